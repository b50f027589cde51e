import { setTimeout as sleep } from 'node:timers/promises';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteBroker, openDatabase } from '@switchboard/sqlite';
import {
  BARE_TABLE,
  benchProducerSigning,
  messagingBenchContract,
  PAD,
  type ProducerStart,
  type WorkerMessage,
} from '../lib/messaging-bench.js';
import { bodyTemplate, clockMs, stampedBody } from '../lib/stamp.js';
import { round } from '../lib/stats.js';
import { Window } from '../lib/window.js';

// A producer process of the messaging scenario: receives `ProducerStart` over IPC, sends `count`
// messages of 1 KiB (in batches, or one every `intervalMs`) and answers `produced`.

const send = (message: WorkerMessage): void => {
  process.send?.(message);
};

process.once('message', (start: ProducerStart) => {
  run(start).catch((error: unknown) => {
    send({ type: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
  });
});

async function run(start: ProducerStart): Promise<void> {
  const cpu0 = process.cpuUsage();
  const producer = start.mode === 'bare' ? bareProducer(start.path) : messagingProducer(start.path, start.signing === true);
  const startedAt = clockMs();
  if (start.intervalMs !== undefined) {
    for (let n = 0; n < start.count; n++) {
      await producer.send(n, 1);
      await sleep(start.intervalMs);
    }
  } else {
    const window = new Window(start.inFlight);
    for (let n = 0; n < start.count; n += start.batch) {
      await window.acquire();
      producer.send(n, Math.min(start.batch, start.count - n)).then(
        () => window.release(),
        (error: unknown) => {
          send({ type: 'error', error: String(error) });
          process.exit(1);
        },
      );
    }
    await window.drained();
  }
  const endedAt = clockMs();
  const cpu = process.cpuUsage(cpu0);
  send({ type: 'produced', startedAt, endedAt, cpuMs: round((cpu.user + cpu.system) / 1000, 1) });
  await producer.close();
  process.disconnect?.();
}

interface Producer {
  send(first: number, count: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Switchboard messaging: `sendBatch` of typed, validated messages (CloudEvents envelope, confirmed commit). */
function messagingProducer(path: string, signing: boolean): Producer {
  const broker = createSqliteBroker({ path });
  const messaging = createMessaging({
    broker,
    service: 'bench-producer',
    deadLetters: false,
    ...(signing ? { signing: benchProducerSigning } : {}),
  });
  return {
    send(first, count) {
      const items = [];
      for (let i = 0; i < count; i++) {
        items.push({ name: 'work.submitted' as const, data: { n: first + i, sentAt: clockMs(), pad: PAD } });
      }
      return count === 1
        ? messaging.send(messagingBenchContract, items[0]!.name, items[0]!.data)
        : messaging.sendBatch(messagingBenchContract, items);
    },
    async close() {
      await messaging.close();
      await broker.close();
    },
  };
}

/** The bare queue: one insert transaction per batch. */
function bareProducer(path: string): Producer {
  const db = openDatabase(path);
  db.exec(`CREATE TABLE IF NOT EXISTS ${BARE_TABLE} (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)`);
  const insert = db.prepare<[Buffer]>(`INSERT INTO ${BARE_TABLE} (body) VALUES (?)`);
  const template = bodyTemplate(1024);
  const insertBatch = db.transaction((count: number) => {
    for (let i = 0; i < count; i++) insert.run(stampedBody(template));
  });
  return {
    async send(_first, count) {
      insertBatch.immediate(count);
    },
    async close() {
      db.close();
    },
  };
}
