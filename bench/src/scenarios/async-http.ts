import { fileURLToPath } from 'node:url';
import type { JobRequestInfo, WaitTransport } from '@switchboard/http';
import { createJobsClient } from '@switchboard/http';
import { Pool } from 'undici';
import { payload } from '../contract.js';
import { type ChildServer, startChild } from '../lib/child.js';
import { runLoad } from '../lib/http-load.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { clockMs } from '../lib/stamp.js';
import { round, Samples } from '../lib/stats.js';
import { jobsBenchContract } from '../servers/jobs-contract.js';

const serverModule = fileURLToPath(new URL('../servers/jobs-service.js', import.meta.url));
const STORES = ['sqlite', 'postgres', 'redis'] as const;
const SCENARIO = 'async-http';
const JSON_HEADERS = { 'content-type': 'application/json' };
const ASYNC_HEADERS = { 'content-type': 'application/json', prefer: 'respond-async' };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asynchronous request-reply (202 + status monitor) on the SQLite, PostgreSQL and Redis job
 * stores. The service (worker in the same process) runs in a child process, the load comes from
 * this process. Measures:
 * - the cost of a submit (202) next to a sync call of the same no-op operation, 1 in flight;
 * - jobs submitted and completed per second with 64 submits in flight;
 * - how long after a job ended a waiting client sees it (long-poll and server-sent events);
 * - how many status requests a 2-second job costs with naive polling, with `Retry-After`, with
 *   long-polling and with server-sent events.
 */
export const asyncHttp: Scenario = {
  name: SCENARIO,
  description: 'async request-reply: submit vs sync call, jobs/s per store, completion latency, status requests per job',
  async run(ctx) {
    for (const store of STORES) {
      let child: ChildServer;
      try {
        child = await startChild(serverModule, [store]);
      } catch (error) {
        ctx.log(`${store}: server did not start (${error instanceof Error ? error.message : String(error)}); skipped`);
        continue;
      }
      try {
        const origin = `http://127.0.0.1:${String(child.info.port)}`;
        await submitVsSync(ctx, store, origin);
        await throughput(ctx, store, origin);
        await noticeLatency(ctx, store, origin);
        if (store === 'sqlite') await requestsPerJob(ctx, store, origin);
      } finally {
        await child.stop();
      }
    }
  },
};

/** Sync call p50 and submit→202 p50 on the same server, 1 in flight, alternating rounds. */
async function submitVsSync(ctx: ScenarioContext, store: string, origin: string): Promise<void> {
  const durationMs = Math.round(3000 * ctx.scale);
  const warmupMs = Math.round(500 * ctx.scale);
  const rounds = 3;
  const pool = new Pool(origin, { connections: 1 });
  const post = (headers: Record<string, string>) => async () => {
    const response = await pool.request({ method: 'POST', path: '/ops/save', headers, body: payload });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}: ${text}`);
  };
  const sync: number[] = [];
  const submit: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['sync', 'submit'] : ['submit', 'sync'];
      for (const kind of order) {
        const result = await runLoad({
          origin,
          path: '/ops/save',
          body: payload,
          concurrency: 1,
          durationMs,
          warmupMs,
          send: post(kind === 'sync' ? JSON_HEADERS : ASYNC_HEADERS),
        });
        (kind === 'sync' ? sync : submit).push(result.p50Ms);
      }
      // Let the worker finish what the submits queued before the next round.
      await drain(origin, 10_000);
    }
  } finally {
    await pool.close();
  }
  const syncP50 = median(sync);
  const submitP50 = median(submit);
  ctx.record({ scenario: SCENARIO, subject: `${store}: sync call`, load: '1 in flight', metrics: { p50Ms: syncP50, rounds } });
  ctx.record({
    scenario: SCENARIO,
    subject: `${store}: submit → 202`,
    load: '1 in flight',
    metrics: { p50Ms: submitP50, rounds, ratioToSync: round(submitP50 / syncP50, 2), target: '≤ 2' },
  });
}

interface ServerStats {
  readonly succeeded: number;
  readonly cpuMs: number;
}

async function stats(origin: string): Promise<ServerStats> {
  const response = await fetch(`${origin}/bench/stats`);
  return (await response.json()) as ServerStats;
}

async function succeeded(origin: string): Promise<number> {
  return (await stats(origin)).succeeded;
}

/** Waits until no job completed for 200 ms (the worker drained the queue), at most `ms`. */
async function drain(origin: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  let last = await succeeded(origin);
  while (Date.now() < until) {
    await sleep(200);
    const now = await succeeded(origin);
    if (now === last) return;
    last = now;
  }
}

/** Jobs submitted over HTTP (64 in flight) and completed by the no-op handler, per second. */
async function throughput(ctx: ScenarioContext, store: string, origin: string): Promise<void> {
  const durationMs = Math.round(5000 * ctx.scale);
  const warmupMs = Math.round(1000 * ctx.scale);
  const concurrency = 64;
  const pool = new Pool(origin, { connections: concurrency });
  let before: ServerStats = { succeeded: 0, cpuMs: 0 };
  let beforeAt = 0;
  const send = async () => {
    const response = await pool.request({ method: 'POST', path: '/ops/save', headers: ASYNC_HEADERS, body: payload });
    const text = await response.body.text();
    if (response.statusCode !== 202) throw new Error(`HTTP ${response.statusCode}: ${text}`);
  };
  const startedAt = performance.now();
  const sampler = (async () => {
    await sleep(warmupMs);
    before = await stats(origin);
    beforeAt = performance.now();
    await sleep(durationMs);
    const after = await stats(origin);
    return {
      completed: after.succeeded - before.succeeded,
      cpuMs: after.cpuMs - before.cpuMs,
      seconds: (performance.now() - beforeAt) / 1000,
    };
  })();
  const load = await runLoad({ origin, path: '/ops/save', body: payload, concurrency, durationMs, warmupMs, send });
  const done = await sampler;
  await pool.close();
  // Whatever is still queued drains now; how long that takes says whether the worker kept up.
  const drainStart = performance.now();
  await drain(origin, 30_000);
  const drainMs = Math.max(0, performance.now() - drainStart - 200);
  const completedPerS = round(done.completed / done.seconds, 0);
  ctx.record({
    scenario: SCENARIO,
    subject: `${store}: submit + no-op job`,
    load: `${concurrency} in flight`,
    metrics: {
      submittedPerS: load.rps,
      completedPerS,
      jobsPerS: Math.min(load.rps, completedPerS),
      serverCpuMsPerJob: round(done.cpuMs / Math.max(1, done.completed), 3),
      cpuBoundJobsPerS: round((1000 * done.completed) / Math.max(1, done.cpuMs), 0),
      submitP50Ms: load.p50Ms,
      submitP99Ms: load.p99Ms,
      errors: load.errors,
      drainMs: Math.round(drainMs),
      elapsedS: round((performance.now() - startedAt) / 1000, 1),
    },
  });
}

/** Job end (handler returned) → client sees `succeeded`, with long-polling and with server-sent events. */
async function noticeLatency(ctx: ScenarioContext, store: string, origin: string): Promise<void> {
  const jobsPerTransport = Math.max(10, Math.round(60 * ctx.scale));
  const client = createJobsClient(jobsBenchContract, { baseUrl: origin });
  try {
    for (const transport of ['long-poll', 'sse'] as const) {
      const samples = new Samples();
      for (let i = 0; i < jobsPerTransport; i++) {
        const job = await client.submit('sleep', { ms: 20 });
        let seenAt = Number.NaN;
        const result = await client.wait(job, {
          transport,
          onStatus: (status) => {
            if (status.status === 'succeeded' && Number.isNaN(seenAt)) seenAt = clockMs();
          },
        });
        samples.add(seenAt - result.finishedAt);
      }
      const [p50, p99] = samples.percentiles(50, 99);
      ctx.record({
        scenario: SCENARIO,
        subject: `${store}: completion notice, ${transport}`,
        load: `${jobsPerTransport} jobs of 20 ms`,
        metrics: { p50Ms: round(p50 ?? Number.NaN, 2), p99Ms: round(p99 ?? Number.NaN, 2), target: 'p50 ≤ 10' },
      });
    }
  } finally {
    await client.close();
  }
}

/** Status requests a 2-second job costs, from submit to the result, per way of following it. */
async function requestsPerJob(ctx: ScenarioContext, store: string, origin: string): Promise<void> {
  const jobMs = 2000;
  const client = createJobsClient(jobsBenchContract, { baseUrl: origin });
  try {
    // Naive: a fixed 100 ms poll of the monitor, ignoring Retry-After and long-polling.
    {
      const job = await client.submit('sleep', { ms: jobMs });
      let requests = 0;
      for (;;) {
        requests++;
        const response = await fetch(job.statusUrl, { redirect: 'manual' });
        await response.arrayBuffer();
        if (response.status === 303) break;
        await sleep(100);
      }
      record(ctx, store, 'naive fixed 100 ms polling', requests);
    }
    const ways: readonly [string, WaitTransport][] = [
      ['polling honouring Retry-After (1 s)', 'poll'],
      ['ours: long-poll', 'long-poll'],
      ['ours: server-sent events', 'sse'],
    ];
    for (const [label, transport] of ways) {
      const job = await client.submit('sleep', { ms: jobMs });
      let requests = 0;
      const onRequest = (info: JobRequestInfo) => {
        if (info.kind === 'status' || info.kind === 'events') requests++;
      };
      await client.wait(job, { transport, onRequest });
      record(ctx, store, label, requests);
    }
  } finally {
    await client.close();
  }
}

function record(ctx: ScenarioContext, store: string, label: string, requests: number): void {
  ctx.record({
    scenario: SCENARIO,
    subject: `${store}: ${label}`,
    load: '1 job of 2 s',
    metrics: { statusRequests: requests },
  });
}
