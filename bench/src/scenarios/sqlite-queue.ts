import { consumeRate, describeError, randomName, withWorkers } from '../lib/broker-load.js';

import type { DriverKind, DriverSpec } from '../lib/queue-driver.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { benchDatabasePath, RAW_SQLITE_IDLE_POLL_MS, removeDatabase } from '../lib/sqlite-files.js';
import { round } from '../lib/stats.js';
import type { PublishPlan } from '../lib/worker-protocol.js';

const SCENARIO = 'sqlite-queue';
const BODY_BYTES = 1024;
const BATCH = 256;
const IDLE_RATE = 50;

interface Subject {
  readonly subject: string;
  readonly kind: DriverKind;
  readonly plan: Omit<PublishPlan, 'count' | 'bodyBytes'>;
}

const subjects: Subject[] = [
  { subject: 'bare SQLite queue (better-sqlite3)', kind: 'raw', plan: { mode: 'batch', batchSize: BATCH } },
  { subject: 'switchboard sqlite, publishBatch', kind: 'switchboard', plan: { mode: 'batch', batchSize: BATCH } },
  { subject: 'switchboard sqlite, publish() x256', kind: 'switchboard', plan: { mode: 'pipelined', inFlight: BATCH } },
];

function spec(kind: DriverKind, synchronous: 'NORMAL' | 'FULL'): DriverSpec {
  const scope = randomName('s');
  return { engine: 'sqlite', kind, scope, target: benchDatabasePath(scope), synchronous };
}

/**
 * The bare two-process SQLite queue next to the Switchboard SQLite broker (raw broker API), each
 * with a producer process and a consumer process on one WAL file, 1 KiB bodies, batches of 256,
 * every message acknowledged (deleted) by the consumer. Measured with `synchronous` NORMAL and
 * FULL, then the publish→handler latency of an idle queue (one message every 20 ms).
 */
export const sqliteQueue: Scenario = {
  name: SCENARIO,
  description: 'two-process SQLite: bare better-sqlite3 queue vs Switchboard SQLite broker, 1 KiB, NORMAL and FULL, idle latency',
  async run(ctx) {
    const messages = Math.max(5000, Math.round(100_000 * ctx.scale));
    ctx.log(`${messages} messages of ${BODY_BYTES} B per run; the bare consumer polls every ${RAW_SQLITE_IDLE_POLL_MS} ms when empty`);
    for (const synchronous of ['NORMAL', 'FULL'] as const) {
      let bare: number | undefined;
      for (const subject of subjects) {
        const rate = await throughput(ctx, subject, synchronous, messages, bare);
        if (subject.kind === 'raw') bare = rate;
      }
    }
    await idleLatency(ctx, 'raw', 'bare SQLite queue (better-sqlite3)');
    await idleLatency(ctx, 'switchboard', 'switchboard sqlite');
  },
};

async function throughput(
  ctx: ScenarioContext,
  subject: Subject,
  synchronous: 'NORMAL' | 'FULL',
  messages: number,
  bare: number | undefined,
): Promise<number | undefined> {
  const load = `sync=${synchronous}`;
  const driver = spec(subject.kind, synchronous);
  try {
    return await withWorkers(driver, async (producer, consumer, topics) => {
      const topic = randomName();
      topics.add(topic);
      await consumer.setup(topic);
      await consumer.consume(topic, { maxInFlight: BATCH });
      const published = await producer.publish(topic, { ...subject.plan, count: messages, bodyBytes: BODY_BYTES });
      const handled = await consumer.wait(messages, 15_000);
      await consumer.stopConsuming();
      const endToEnd = handled.received > 0 ? round(handled.received / ((handled.lastAt - published.startedAt) / 1000), 0) : 0;
      ctx.record({
        scenario: SCENARIO,
        subject: subject.subject,
        load,
        metrics: {
          msgsPerS: endToEnd,
          publishMsgsPerS: published.msgsPerS,
          consumeMsgsPerS: consumeRate(handled),
          p50Ms: handled.p50Ms,
          p99Ms: handled.p99Ms,
          messages: handled.received,
          ...(bare ? { ratioToBare: round(endToEnd / bare, 3) } : {}),
        },
      });
      return endToEnd;
    });
  } catch (error) {
    ctx.record({ scenario: SCENARIO, subject: subject.subject, load, metrics: { error: describeError(error) } });
    return undefined;
  } finally {
    await removeDatabase(driver.target);
  }
}

async function idleLatency(ctx: ScenarioContext, kind: DriverKind, subject: string): Promise<void> {
  const load = `idle, 1 msg/${1000 / IDLE_RATE} ms`;
  const driver = spec(kind, 'NORMAL');
  try {
    await withWorkers(driver, async (producer, consumer, topics) => {
      const topic = randomName();
      topics.add(topic);
      await consumer.setup(topic);
      await consumer.consume(topic, { maxInFlight: BATCH });
      const published = await producer.publish(topic, {
        mode: 'rate',
        ratePerS: IDLE_RATE,
        durationMs: Math.max(2000, Math.round(5000 * ctx.scale)),
        bodyBytes: BODY_BYTES,
      });
      const handled = await consumer.wait(published.total, 5_000);
      await consumer.stopConsuming();
      ctx.record({
        scenario: SCENARIO,
        subject,
        load,
        metrics: { p50Ms: handled.p50Ms, p99Ms: handled.p99Ms, messages: handled.received, publishP50Ms: published.p50Ms },
      });
    });
  } catch (error) {
    ctx.record({ scenario: SCENARIO, subject, load, metrics: { error: describeError(error) } });
  } finally {
    await removeDatabase(driver.target);
  }
}
