import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startChild } from '../lib/child.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { round, Samples } from '../lib/stats.js';
import { type RequestReplyEngine, type RequestReplySpec, requester } from '../workers/request-reply-peer.js';

const peerScript = fileURLToPath(new URL('../workers/request-reply-peer.js', import.meta.url));
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SCENARIO = 'request-reply';
/** About 100 bytes of input JSON. */
const PAD = 'x'.repeat(80);

const SUBJECTS: readonly { engine: RequestReplyEngine; label: string }[] = [
  { engine: 'raw-nats', label: 'raw NATS request/reply (nats.js, one inbox)' },
  { engine: 'switchboard-nats', label: 'Switchboard messaging.request, NATS' },
  { engine: 'moleculer-nats', label: 'Moleculer 0.15.2 call, NATS' },
  { engine: 'switchboard-redis', label: 'Switchboard messaging.request, Redis Streams' },
];

interface Measured {
  readonly perS: number;
  readonly p50: number;
  readonly p99: number;
  readonly count: number;
  /** CPU time of the requesting process per request, in microseconds. */
  readonly cpuUs: number;
}

/** `inFlight` callers, each sending its next request when the last was answered, for `ms`. */
async function drive(call: (n: number) => Promise<number>, inFlight: number, ms: number): Promise<Measured> {
  const samples = new Samples();
  const end = performance.now() + ms;
  let n = 0;
  const worker = async () => {
    while (performance.now() < end) {
      const i = n++;
      const started = performance.now();
      const answer = await call(i);
      samples.add(performance.now() - started);
      if (answer !== i * 2) throw new Error(`wrong answer ${answer} to ${i}`);
    }
  };
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const [p50, p99] = samples.percentiles(50, 99);
  return {
    perS: (samples.count / elapsed) * 1000,
    p50: p50 ?? Number.NaN,
    p99: p99 ?? Number.NaN,
    count: samples.count,
    cpuUs: (used.user + used.system) / samples.count,
  };
}

async function measure(engine: RequestReplyEngine, ctx: ScenarioContext): Promise<{ at64: Measured; at1: Measured }> {
  const spec: RequestReplySpec = { engine, runId: randomBytes(4).toString('hex'), natsUrl: NATS_URL, redisUrl: REDIS_URL };
  const peer = await startChild(peerScript, [JSON.stringify(spec)]);
  try {
    const client = await requester(spec, PAD);
    try {
      await drive((n) => client.call(n), 16, 1_000 * ctx.scale); // warm-up
      const at64 = await drive((n) => client.call(n), 64, 5_000 * ctx.scale);
      const at1 = await drive((n) => client.call(n), 1, 3_000 * ctx.scale);
      return { at64, at1 };
    } finally {
      await client.close();
    }
  } finally {
    await peer.stop();
  }
}

/**
 * Request/reply through the broker, responder in its own process: 64 callers each awaiting its
 * answer before asking again (throughput), then one (latency). Switchboard's `messaging.request`
 * (CloudEvents envelope, schemas checked on both ends, the handler run through the consumer's
 * route/validate/timeout steps) next to hand-rolled core NATS request/reply with one inbox and to
 * Moleculer's `call`; and the generic request/reply on Redis Streams (a reply stream per process).
 */
export const requestReply: Scenario = {
  name: SCENARIO,
  description: 'messaging.request round trips/s at 64 in flight (target ≥ 0.8× raw NATS) and p50 at 1 (target ≤ raw + 0.1 ms)',
  async run(ctx) {
    const results = new Map<RequestReplyEngine, { at64: Measured; at1: Measured }>();
    for (const { engine, label } of SUBJECTS) {
      let result: { at64: Measured; at1: Measured };
      try {
        result = await measure(engine, ctx);
      } catch (error) {
        ctx.log(`${label}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      results.set(engine, result);
      const raw = results.get('raw-nats');
      for (const [load, m] of [
        ['64 in flight', result.at64],
        ['1 in flight', result.at1],
      ] as const) {
        const base = raw === undefined ? undefined : load === '64 in flight' ? raw.at64 : raw.at1;
        ctx.record({
          scenario: SCENARIO,
          subject: label,
          load,
          metrics: {
            'req/s': round(m.perS, 0),
            'p50 ms': round(m.p50, 3),
            'p99 ms': round(m.p99, 3),
            requests: m.count,
            'requester CPU µs/req': round(m.cpuUs, 1),
            ...(base === undefined || engine === 'raw-nats'
              ? {}
              : { 'vs raw': round(m.perS / base.perS, 2), 'p50 − raw ms': round(m.p50 - base.p50, 3) }),
          },
        });
      }
    }
  },
};
