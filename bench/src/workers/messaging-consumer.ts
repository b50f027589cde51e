import { createMessaging } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteDeadLetterStore, createSqliteReceiptStore, openDatabase } from '@switchboard/sqlite';
import {
  BARE_TABLE,
  benchConsumerSigning,
  type ConsumerDone,
  type ConsumerStart,
  messagingBenchContract,
  type WorkerMessage,
} from '../lib/messaging-bench.js';
import { clockMs, readStamp } from '../lib/stamp.js';
import { round, Samples } from '../lib/stats.js';

// A consumer process of the messaging scenario: receives `ConsumerStart` over IPC, answers
// `ready` once subscribed, then `consumed` once `count` messages were handled.

const send = (message: WorkerMessage): void => {
  process.send?.(message);
};

process.once('message', (start: ConsumerStart) => {
  run(start).catch((error: unknown) => {
    send({ type: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exitCode = 1;
  });
});

async function run(start: ConsumerStart): Promise<void> {
  const latency = new Samples();
  const cpu0 = process.cpuUsage();
  let received = 0;
  let firstAt = 0;
  let lastAt = 0;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const handled = (sentAt: number): void => {
    const now = clockMs();
    if (received === 0) firstAt = now;
    latency.add(now - sentAt);
    received += 1;
    lastAt = now;
    if (received === start.count) finish();
  };

  let stop: () => Promise<void>;
  if (start.mode === 'bare') {
    stop = consumeBare(start, handled);
  } else {
    const broker = createSqliteBroker({ path: start.path });
    const deadLetters = createSqliteDeadLetterStore({ path: start.path });
    const receipts = start.mode === 'full' ? createSqliteReceiptStore({ path: start.path }) : undefined;
    const messaging = createMessaging({
      broker,
      service: messagingBenchContract.name,
      deadLetters,
      maxInFlight: start.maxInFlight,
      ...(receipts === undefined ? {} : { receipts }),
      ...(start.signing === true ? { signing: benchConsumerSigning } : {}),
    });
    messaging.handle(messagingBenchContract, 'work.submitted', (data) => handled(data.sentAt));
    await messaging.start();
    stop = async () => {
      await messaging.close();
      await broker.close();
      await receipts?.close();
      await deadLetters.close();
    };
  }
  send({ type: 'ready' });
  await finished;
  const cpu = process.cpuUsage(cpu0);
  const [p50, p99] = latency.percentiles(50, 99);
  const done: ConsumerDone = {
    type: 'consumed',
    received,
    firstAt,
    lastAt,
    p50Ms: round(p50 ?? Number.NaN, 3),
    p99Ms: round(p99 ?? Number.NaN, 3),
    cpuMs: round((cpu.user + cpu.system) / 1000, 1),
  };
  send(done);
  await stop();
  process.disconnect?.();
}

/** The bare queue: read up to `maxInFlight` rows in order, handle them, delete them in one statement. */
function consumeBare(start: ConsumerStart, handled: (sentAt: number) => void): () => Promise<void> {
  const db = openDatabase(start.path);
  db.exec(`CREATE TABLE IF NOT EXISTS ${BARE_TABLE} (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)`);
  const select = db.prepare<[number], { seq: number; body: Buffer }>(`SELECT seq, body FROM ${BARE_TABLE} ORDER BY seq LIMIT ?`);
  const remove = db.prepare<[number]>(`DELETE FROM ${BARE_TABLE} WHERE seq <= ?`);
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      const rows = select.all(start.maxInFlight);
      const last = rows.at(-1);
      if (last === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      for (const row of rows) handled(readStamp(row.body));
      remove.run(last.seq);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  return async () => {
    stopping = true;
    await loop;
    db.close();
  };
}
