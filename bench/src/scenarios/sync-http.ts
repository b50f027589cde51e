import { fileURLToPath } from 'node:url';
import { createClient } from '@switchboard/http';
import { benchContract, payload } from '../contract.js';
import { type ChildServer, startChild } from '../lib/child.js';
import { type LoadResult, runLoad } from '../lib/http-load.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

const server = (name: string) => fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url));

interface Subject {
  readonly name: string;
  readonly server: string;
  readonly caller: 'raw' | 'client';
}

const subjects: readonly Subject[] = [
  { name: 'bare node:http + raw undici', server: 'bare-http', caller: 'raw' },
  { name: 'fastify + raw undici', server: 'fastify', caller: 'raw' },
  { name: 'switchboard server + raw undici', server: 'switchboard', caller: 'raw' },
  { name: 'switchboard server + client', server: 'switchboard', caller: 'client' },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * Sync call, ~100-byte JSON body: Switchboard (server with input+output validation, called by
 * raw undici and by the typed Switchboard client) next to a bare node:http server and Fastify
 * with the same route. Each server runs in its own process, the load comes from this process.
 * Subjects are measured in alternating rounds (the order rotates each round) and the median
 * round is reported, so drift on a shared machine hits every subject alike.
 */
export const syncHttp: Scenario = {
  name: 'sync-http',
  description: 'sync call: Switchboard vs bare node:http and Fastify, raw undici load, 1 and 64 in flight',
  async run(ctx) {
    const durationMs = Math.round(5000 * ctx.scale);
    const warmupMs = Math.round(1000 * ctx.scale);
    const rounds = ctx.scale < 1 ? 1 : 3;
    const servers = new Map<string, ChildServer>();
    try {
      for (const name of new Set(subjects.map((s) => s.server))) servers.set(name, await startChild(server(name)));
      const input = JSON.parse(payload) as { name: string; email: string; tags: string[]; age: number };
      for (const concurrency of [1, 64]) {
        const results = new Map<string, LoadResult[]>(subjects.map((s) => [s.name, []]));
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < subjects.length; i++) {
            const subject = subjects[(i + r) % subjects.length] as Subject;
            const origin = `http://127.0.0.1:${String(servers.get(subject.server)?.info.port)}`;
            const client =
              subject.caller === 'client'
                ? createClient(benchContract, { baseUrl: origin, connections: concurrency, retry: false, breaker: false })
                : undefined;
            const result = await runLoad({
              origin,
              path: '/ops/save',
              body: payload,
              concurrency,
              durationMs,
              warmupMs,
              ...(client ? { send: () => client.call('save', input) } : {}),
            });
            await client?.close();
            results.get(subject.name)?.push(result);
          }
        }
        const bareRuns = results.get(subjects[0]?.name ?? '') ?? [];
        const bareRps = median(bareRuns.map((x) => x.rps));
        const bareP50 = median(bareRuns.map((x) => x.p50Ms));
        for (const subject of subjects) {
          const runs = results.get(subject.name) ?? [];
          const rps = median(runs.map((x) => x.rps));
          const p50Ms = median(runs.map((x) => x.p50Ms));
          ctx.record({
            scenario: 'sync-http',
            subject: subject.name,
            load: `${concurrency} in flight`,
            metrics: {
              rps,
              p50Ms,
              p99Ms: median(runs.map((x) => x.p99Ms)),
              errors: runs.reduce((sum, x) => sum + x.errors, 0),
              rounds: runs.length,
              ratioToBare: round(rps / bareRps, 3),
              addedP50Ms: round(p50Ms - bareP50, 3),
            },
          });
        }
      }
    } finally {
      await Promise.all([...servers.values()].map((child) => child.stop()));
    }
  },
};
