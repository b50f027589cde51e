/**
 * The request/reply scenario with both ends in one process (`node bench/dist/request-reply-inprocess.js
 * [seconds] [repeats]`): raw NATS, then `messaging.request` served by `messaging.serve`, each on
 * its own connections to the local NATS server. It prints req/s and p50 at 64 in flight (the best
 * of `repeats` windows, by CPU) and at 1, with the process's CPU per round trip: both ends, so the
 * figure to compare is Switchboard's next to raw's of the same run. Meant for profiling
 * (`node --cpu-prof ...`): short, and free of the scenario's child process.
 */
import { randomBytes } from 'node:crypto';
import { type RequestReplyEngine, type RequestReplySpec, requester, responder } from './workers/request-reply-peer.js';

interface Window {
  readonly rps: number;
  readonly cpuUsPerRoundTrip: number;
  readonly p50Ms: number;
}

async function drive(call: (n: number) => Promise<number>, inFlight: number, ms: number): Promise<Window> {
  let done = 0;
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const at = performance.now();
        await call(done);
        latencies.push(performance.now() - at);
        done += 1;
      }
    }),
  );
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    rps: Math.round((done / elapsed) * 1000),
    cpuUsPerRoundTrip: Number(((used.user + used.system) / done).toFixed(1)),
    p50Ms: Number((latencies[latencies.length >> 1] ?? 0).toFixed(3)),
  };
}

const seconds = Number(process.argv[2] ?? 2);
const repeats = Number(process.argv[3] ?? 3);
const engines: RequestReplyEngine[] = ['raw-nats', 'switchboard-nats'];
const runId = randomBytes(4).toString('hex');
for (const engine of engines) {
  const spec: RequestReplySpec = {
    engine,
    runId,
    natsUrl: process.env.NATS_URL ?? '127.0.0.1:4222',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
  const close = await responder(spec);
  const client = await requester(spec, 'x'.repeat(80));
  const call = (n: number) => client.call(n);
  await drive(call, 64, 500);
  let best: Window | undefined;
  for (let i = 0; i < repeats; i++) {
    const window = await drive(call, 64, seconds * 1000);
    if (best === undefined || window.cpuUsPerRoundTrip < best.cpuUsPerRoundTrip) best = window;
  }
  const alone = await drive(call, 1, seconds * 500);
  process.stdout.write(`${JSON.stringify({ engine, at64: best, at1: alone })}\n`);
  await client.close();
  await close();
}
