import { stat } from 'node:fs/promises';
import { consumeRate, describeError, randomName, withWorkers } from '../lib/broker-load.js';
import type { DriverSpec } from '../lib/queue-driver.js';
import type { Scenario } from '../lib/scenario.js';
import { benchDatabasePath, removeDatabase } from '../lib/sqlite-files.js';
import { round } from '../lib/stats.js';
import type { ConsumeStats, MemoryStats } from '../lib/worker-protocol.js';

const SCENARIO = 'sqlite-backlog';
const BODY_BYTES = 1024;
const MIB = 1024 * 1024;
/** Messages in the backlog of a full run; `BENCH_BACKLOG_MESSAGES` overrides it, `--quick` scales it. */
const DEFAULT_BACKLOG = 1_000_000;

function backlogSize(scale: number): number {
  const configured = Number(process.env.BENCH_BACKLOG_MESSAGES ?? DEFAULT_BACKLOG);
  const base = Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_BACKLOG;
  return Math.max(1000, Math.round(base * scale));
}

/**
 * Memory of a Switchboard SQLite consumer process while a large backlog waits in the file:
 * a producer process publishes N × 1 KiB in batches of 1 000, then the consumer process drains
 * them (256 in flight, each acked). Its RSS is read before the backlog exists, with the backlog
 * waiting, every 250 ms while it consumes, and after. Nothing should be loaded whole.
 */
export const sqliteBacklog: Scenario = {
  name: SCENARIO,
  description: 'SQLite broker consumer RSS with 1M × 1 KiB waiting (BENCH_BACKLOG_MESSAGES, scaled by --quick): flat memory',
  async run(ctx) {
    const count = backlogSize(ctx.scale);
    const scope = randomName('s');
    const spec: DriverSpec = { engine: 'sqlite', kind: 'switchboard', scope, target: benchDatabasePath(scope), synchronous: 'NORMAL' };
    try {
      await withWorkers(spec, async (producer, consumer, topics) => {
        const topic = randomName();
        topics.add(topic);
        await consumer.setup(topic);
        const idle = await consumer.memory();
        const published = await producer.publish(topic, { mode: 'batch', batchSize: 1000, count, bodyBytes: BODY_BYTES });
        const fileMiB = await fileSizeMiB(spec.target);
        ctx.record({
          scenario: SCENARIO,
          subject: 'producer process',
          load: `${count} x ${BODY_BYTES} B`,
          metrics: { publishMsgsPerS: published.msgsPerS, batchP50Ms: published.p50Ms, databaseMiB: round(fileMiB, 0) },
        });
        const waiting = await consumer.memory();
        await consumer.consume(topic, { maxInFlight: 256, latency: false });
        const samples: MemoryStats[] = [];
        let done = false;
        const sampler = (async () => {
          while (!done) {
            samples.push(await consumer.memory());
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        })();
        let handled: ConsumeStats;
        try {
          handled = await consumer.wait(count, 30_000);
        } finally {
          done = true;
          await sampler;
        }
        await consumer.stopConsuming();
        const after = await consumer.memory();
        const rss = samples.map((sample) => sample.rssMiB).sort((a, b) => a - b);
        const peak = rss.at(-1) ?? Number.NaN;
        const median = rss[Math.floor(rss.length / 2)] ?? Number.NaN;
        const peakHeap = Math.max(...samples.map((sample) => sample.heapUsedMiB));
        ctx.record({
          scenario: SCENARIO,
          subject: 'consumer process RSS (MiB)',
          load: `${count} waiting`,
          metrics: {
            beforeBacklog: round(idle.rssMiB, 1),
            backlogWaiting: round(waiting.rssMiB, 1),
            medianWhileConsuming: round(median, 1),
            peakWhileConsuming: round(peak, 1),
            afterConsuming: round(after.rssMiB, 1),
            peakHeapUsed: round(peakHeap, 1),
            samples: samples.length,
            consumeMsgsPerS: consumeRate(handled),
            consumed: handled.received,
          },
        });
      });
    } catch (error) {
      ctx.record({ scenario: SCENARIO, subject: 'switchboard sqlite', load: `${count} waiting`, metrics: { error: describeError(error) } });
    } finally {
      await removeDatabase(spec.target);
    }
  },
};

async function fileSizeMiB(path: string): Promise<number> {
  const sizes = await Promise.all(
    ['', '-wal'].map((suffix) =>
      stat(`${path}${suffix}`).then(
        (s) => s.size,
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0) / MIB;
}
