import { fileURLToPath } from 'node:url';
import { createClient } from '@switchboard/http';
import { benchContract, payload } from '../contract.js';
import { startChild } from '../lib/child.js';
import { runLoad } from '../lib/http-load.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

const server = (name: string) => fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url));

/**
 * Sync call, ~100-byte JSON body: Switchboard (server with input+output validation, called by
 * raw undici and by the typed Switchboard client) next to a bare node:http server and Fastify
 * with the same route, each server in its own process, load from this process.
 */
export const syncHttp: Scenario = {
  name: 'sync-http',
  description: 'sync call: Switchboard vs bare node:http and Fastify, raw undici load, 1 and 64 in flight',
  async run(ctx) {
    const durationMs = Math.round(8000 * ctx.scale);
    const warmupMs = Math.round(2000 * ctx.scale);
    for (const concurrency of [1, 64]) {
      const results: Record<string, { rps: number; p50Ms: number; p99Ms: number }> = {};
      const subjects: [string, string, 'raw' | 'client'][] = [
        ['bare node:http + raw undici', 'bare-http', 'raw'],
        ['fastify + raw undici', 'fastify', 'raw'],
        ['switchboard server + raw undici', 'switchboard', 'raw'],
        ['switchboard server + client', 'switchboard', 'client'],
      ];
      for (const [subject, script, caller] of subjects) {
        const child = await startChild(server(script));
        const origin = `http://127.0.0.1:${String(child.info.port)}`;
        try {
          const client =
            caller === 'client'
              ? createClient(benchContract, { baseUrl: origin, connections: concurrency, retry: false, breaker: false })
              : undefined;
          const input = JSON.parse(payload) as { name: string; email: string; tags: string[]; age: number };
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
          results[subject] = result;
          const bare = results['bare node:http + raw undici'];
          ctx.record({
            scenario: 'sync-http',
            subject,
            load: `${concurrency} in flight`,
            metrics: {
              rps: result.rps,
              p50Ms: result.p50Ms,
              p99Ms: result.p99Ms,
              errors: result.errors,
              ...(bare ? { ratioToBare: round(result.rps / bare.rps, 3), addedP50Ms: round(result.p50Ms - bare.p50Ms, 3) } : {}),
            },
          });
        } finally {
          await child.stop();
        }
      }
    }
  },
};
