import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { DriverKind, DriverSpec, Engine } from './queue-driver.js';
import type { ScenarioContext } from './scenario.js';
import { round } from './stats.js';
import { QueueWorker } from './worker-client.js';
import type { ConsumeStats, PublishResult } from './worker-protocol.js';

/** A random name part: letters and digits only, valid as a stream, queue, key, table or schema name. */
export function randomName(prefix = 't'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/** Whether something accepts TCP connections at the host and port of `url`. */
export async function reachable(url: string, defaultPort: number, timeoutMs = 1500): Promise<boolean> {
  let host = '127.0.0.1';
  let port = defaultPort;
  try {
    const parsed = new URL(url);
    host = parsed.hostname || host;
    port = parsed.port ? Number(parsed.port) : defaultPort;
  } catch {
    // Not a URL: try the default address.
  }
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Throughput of a consumer from its stats: messages over the time from (re)start to the last one. */
export function consumeRate(stats: ConsumeStats): number {
  const seconds = (stats.lastAt - stats.startedAt) / 1000;
  return stats.received > 0 && seconds > 0 ? round(stats.received / seconds, 0) : 0;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Starts a producer and a consumer worker for `spec` and runs `body`. Then, whatever happened:
 * the consumer exits, the producer removes every topic `body` registered in `topics` and the
 * run's scope (schema, file), and exits.
 */
export async function withWorkers<T>(
  spec: DriverSpec,
  body: (producer: QueueWorker, consumer: QueueWorker, topics: Set<string>) => Promise<T>,
): Promise<T> {
  const topics = new Set<string>();
  const consumer = await QueueWorker.start(spec);
  let producer: QueueWorker | undefined;
  try {
    producer = await QueueWorker.start(spec);
    return await body(producer, consumer, topics);
  } finally {
    await consumer.close();
    if (producer) {
      for (const topic of topics) await producer.cleanup(topic).catch(() => {});
      await producer.dropScope().catch(() => {});
      await producer.close();
    }
  }
}

export interface EngineComparison {
  readonly scenario: string;
  readonly engine: Exclude<Engine, 'sqlite'>;
  /** Engine URL. */
  readonly target: string;
  readonly defaultPort: number;
  /** How the raw subject is described in the table, e.g. `raw ioredis`. */
  readonly rawLabel: string;
  /** The engine holds the messaging layer's receipts and inbox itself (PostgreSQL, Redis): measure that too. */
  readonly nativeStores?: boolean;
}

interface KindResult {
  serial: PublishResult;
  pipelined: PublishResult;
  consume: { rate: number; stats: ConsumeStats };
  latency: { published: PublishResult; stats: ConsumeStats };
}

const BODY_BYTES = 100;
const IN_FLIGHT = 256;
const LATENCY_RATE = 500;

/**
 * Raw client next to the Switchboard adapter on one engine, each with a producer and a consumer
 * process: confirmed publishes (serial, then 256 in flight), consume + ack of a preloaded backlog
 * (256 in flight), and publish→handler latency at a modest 500 msg/s. 100-byte bodies. Records
 * the adapter's ratio to the raw client for each.
 */
export async function compareEngine(ctx: ScenarioContext, options: EngineComparison): Promise<void> {
  const { scenario, engine, target } = options;
  if (!(await reachable(target, options.defaultPort))) {
    ctx.record({ scenario, subject: `${engine} server`, load: '-', metrics: { status: `not reachable at ${target}; skipped` } });
    return;
  }
  const durationMs = Math.max(1000, Math.round(5000 * ctx.scale));
  const warmupMs = Math.max(200, Math.round(1000 * ctx.scale));
  const backlog = Math.max(2000, Math.round(50_000 * ctx.scale));
  const latencyMs = Math.max(1000, Math.round(5000 * ctx.scale));
  const results = new Map<DriverKind, KindResult>();
  const subjects: Record<DriverKind, string> = {
    raw: options.rawLabel,
    switchboard: `switchboard ${engine} adapter`,
    transport: 'messaging transport path',
    full: 'messaging full path (SQLite inbox + receipts)',
    'full-native': `messaging full path (${engine} inbox + receipts)`,
  };
  const kinds: DriverKind[] = ['raw', 'switchboard', 'transport', 'full', ...(options.nativeStores ? (['full-native'] as const) : [])];
  for (const kind of kinds) {
    const subject = subjects[kind];
    const spec: DriverSpec = { engine, kind, scope: randomName('s'), target };
    try {
      const result = await withWorkers(spec, async (producer, consumer, topics) => {
        const publishTopic = randomName();
        topics.add(publishTopic);
        await consumer.setup(publishTopic);
        const serial = await producer.publish(publishTopic, { mode: 'serial', bodyBytes: BODY_BYTES, durationMs, warmupMs });
        const pipelined = await producer.publish(publishTopic, {
          mode: 'pipelined',
          inFlight: IN_FLIGHT,
          bodyBytes: BODY_BYTES,
          durationMs,
          warmupMs,
        });
        await consumer.cleanup(publishTopic);
        topics.delete(publishTopic);

        const consumeTopic = randomName();
        topics.add(consumeTopic);
        await consumer.setup(consumeTopic);
        await producer.publish(consumeTopic, { mode: 'batch', batchSize: 1000, count: backlog, bodyBytes: BODY_BYTES });
        await consumer.consume(consumeTopic, { maxInFlight: IN_FLIGHT });
        const consumed = await consumer.wait(backlog, 15_000);

        await consumer.reset();
        const published = await producer.publish(consumeTopic, {
          mode: 'rate',
          ratePerS: LATENCY_RATE,
          durationMs: latencyMs,
          bodyBytes: BODY_BYTES,
        });
        const handled = await consumer.wait(published.total, 5_000);
        await consumer.stopConsuming();
        return { serial, pipelined, consume: { rate: consumeRate(consumed), stats: consumed }, latency: { published, stats: handled } };
      });
      results.set(kind, result);
      recordKind(
        ctx,
        scenario,
        subject,
        result,
        kind === 'raw' ? undefined : results.get('raw'),
        kind.startsWith('full') ? results.get('transport') : undefined,
      );
    } catch (error) {
      ctx.record({ scenario, subject, load: '-', metrics: { error: describeError(error) } });
    }
  }
}

function ratio(value: number, base: number | undefined): Record<string, number> {
  return base === undefined || base === 0 ? {} : { ratioToRaw: round(value / base, 3) };
}

/** Microseconds per message more than `base` (the cost of what one path does on top of the other). */
function added(rate: number, base: number | undefined): Record<string, number> {
  return base === undefined || base === 0 || rate === 0 ? {} : { addedUsPerMsg: round(1e6 / rate - 1e6 / base, 1) };
}

function recordKind(
  ctx: ScenarioContext,
  scenario: string,
  subject: string,
  r: KindResult,
  raw: KindResult | undefined,
  transport: KindResult | undefined,
): void {
  ctx.record({
    scenario,
    subject,
    load: 'publish serial',
    metrics: {
      msgsPerS: r.serial.msgsPerS,
      confirmP50Ms: r.serial.p50Ms,
      confirmP99Ms: r.serial.p99Ms,
      ...ratio(r.serial.msgsPerS, raw?.serial.msgsPerS),
    },
  });
  ctx.record({
    scenario,
    subject,
    load: `publish ${IN_FLIGHT} in flight`,
    metrics: {
      msgsPerS: r.pipelined.msgsPerS,
      confirmP50Ms: r.pipelined.p50Ms,
      confirmP99Ms: r.pipelined.p99Ms,
      ...ratio(r.pipelined.msgsPerS, raw?.pipelined.msgsPerS),
    },
  });
  ctx.record({
    scenario,
    subject,
    load: `consume+ack ${IN_FLIGHT}`,
    metrics: {
      msgsPerS: r.consume.rate,
      messages: r.consume.stats.received,
      consumerCpuUsPerMsg: round((r.consume.stats.cpuMs * 1000) / Math.max(1, r.consume.stats.received), 1),
      ...ratio(r.consume.rate, raw?.consume.rate),
      ...added(r.consume.rate, transport?.consume.rate),
    },
  });
  const lost = r.latency.published.total - r.latency.stats.received;
  ctx.record({
    scenario,
    subject,
    load: `${LATENCY_RATE} msg/s`,
    metrics: {
      p50Ms: r.latency.stats.p50Ms,
      p99Ms: r.latency.stats.p99Ms,
      messages: r.latency.stats.received,
      ...(lost > 0 ? { missing: lost } : {}),
      ...(raw ? { addedP50Ms: round(r.latency.stats.p50Ms - raw.latency.stats.p50Ms, 3) } : {}),
    },
  });
}
