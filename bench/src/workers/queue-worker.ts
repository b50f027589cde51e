/**
 * A benchmark worker process: builds one queue driver (raw client or Switchboard adapter, from the
 * JSON spec in argv[2]) and runs the commands its parent sends over IPC: publish plans, consuming,
 * memory readings. Publishers and consumers live in separate workers, so each gets its own core.
 */
import { ConsumeRecorder } from '../lib/consume-recorder.js';
import { createDriver } from '../lib/drivers/index.js';
import { runPublishPlan } from '../lib/publish-load.js';
import type { DriverSpec, QueueDriver } from '../lib/queue-driver.js';
import type { MemoryStats, WorkerCommand, WorkerReply, WorkerRequest } from '../lib/worker-protocol.js';

const MIB = 1024 * 1024;

function reply(message: WorkerReply): void {
  process.send?.(message);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

let recorder = new ConsumeRecorder({ latency: true });
let stopConsuming: (() => Promise<void>) | undefined;

async function run(driver: QueueDriver, command: WorkerCommand): Promise<unknown> {
  switch (command.op) {
    case 'setup':
      return driver.setup(command.topic);
    case 'cleanup':
      return driver.cleanup(command.topic);
    case 'drop-scope':
      return driver.dropScope();
    case 'publish':
      return runPublishPlan(
        { publish: (body) => driver.publish(command.topic, body), publishBatch: (bodies) => driver.publishBatch(command.topic, bodies) },
        command.plan,
      );
    case 'consume':
      if (stopConsuming) throw new Error('already consuming');
      recorder = new ConsumeRecorder({ latency: command.latency });
      // Counted from here: deliveries may arrive before `consume` resolves.
      stopConsuming = await driver.consume(command.topic, { maxInFlight: command.maxInFlight, onError: recorder.fail }, recorder.onMessage);
      return undefined;
    case 'reset':
      recorder.reset();
      return undefined;
    case 'wait':
      return recorder.wait(command.count, command.idleMs);
    case 'stop-consume': {
      const stop = stopConsuming;
      stopConsuming = undefined;
      await stop?.();
      return recorder.stats();
    }
    case 'memory': {
      const usage = process.memoryUsage();
      const stats: MemoryStats = { rssMiB: usage.rss / MIB, heapUsedMiB: usage.heapUsed / MIB };
      return stats;
    }
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as DriverSpec;
  let driver: QueueDriver;
  try {
    driver = await createDriver(spec);
  } catch (error) {
    reply({ failed: describe(error) });
    process.exit(1);
  }
  process.on('message', (request: WorkerRequest) => {
    run(driver, request.command).then(
      (result) => reply({ id: request.id, ok: true, result: result ?? null }),
      (error: unknown) => reply({ id: request.id, ok: false, error: describe(error) }),
    );
  });
  process.on('disconnect', () => {
    const stop = stopConsuming;
    stopConsuming = undefined;
    void (async () => {
      await stop?.().catch(() => {});
      await driver.close().catch(() => {});
      process.exit(0);
    })();
  });
  reply({ ready: true });
}

process.on('unhandledRejection', (error) => {
  console.error(`queue worker: unhandled rejection: ${describe(error)}`);
});

await main();
