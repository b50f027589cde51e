import { implement } from '@switchboard/core';
import { createClient, createHttpService } from '@switchboard/http';
import { onShutdown, readConfig, requireEnv } from './config.js';
import { type Pattern, type PatternReport, serviceA, serviceB } from './contracts.js';
import { announceReady } from './processes.js';

/**
 * ServiceA: processes a request and needs ServiceB. `process(name, pattern)` runs A's own logic,
 * then reaches B the way it is asked to, and reports what happened, how long it took and what A
 * had to know about B.
 */
const config = readConfig(4001);
const serviceBUrl = requireEnv('SERVICE_B_URL');
const b = createClient(serviceB, { baseUrl: serviceBUrl, timeoutMs: 10_000 });

type Runner = (name: string) => Promise<Omit<PatternReport, 'pattern' | 'durationMs'>>;

const runners: Record<Pattern, Runner | undefined> = {
  /** Pattern 1: call B and wait for its answer. */
  'sync-http': async (name) => {
    const { saved, id } = await b.call('save', { name });
    return {
      ok: saved,
      summary: `B answered saved=${saved} (id ${id})`,
      coupling: "B's URL and contract; B must be up right now",
      details: { saved, id },
    };
  },
  'async-http': undefined,
  message: undefined,
  event: undefined,
  'claim-check': undefined,
};

/** A's own business logic, before it involves B. */
function normalise(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

const handlers = implement(serviceA, {
  process: async ({ name, pattern }) => {
    const runner = runners[pattern];
    const started = performance.now();
    if (!runner) {
      return { pattern, ok: false, durationMs: 0, summary: 'not available in this build', coupling: '', details: {} };
    }
    const report = await runner(normalise(name));
    return { pattern, durationMs: Math.round((performance.now() - started) * 100) / 100, ...report };
  },
});

const http = createHttpService({ contract: serviceA, handlers });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-a', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
  await b.close();
});
