// A consumer process of the chaos suite (service `chaos-b`): takes a JSON `ConsumerConfig` as its
// only argument, prints `ready` once subscribed and runs until killed. Each handled message writes
// one row (message id, pid, attempt) to the `effects` table, committed with its `processed` mark.
import { createMessaging } from '@switchboard/messaging';
import { createSqliteDeadLetterStore, createSqliteReceiptStore, openDatabase } from '@switchboard/sqlite';
import { openBroker } from './engines.js';
import { CONSUMER_TIMEOUTS, type ConsumerConfig, chaosReceiver } from './workload.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ConsumerConfig;
const db = openDatabase(config.db);
db.pragma('busy_timeout = 10000');
db.exec(`CREATE TABLE IF NOT EXISTS effects (
  message_id TEXT NOT NULL, pid INTEGER NOT NULL, attempt INTEGER NOT NULL, at INTEGER NOT NULL)`);
db.exec('CREATE TABLE IF NOT EXISTS fenced (message_id TEXT NOT NULL, pid INTEGER NOT NULL)');
const insertFenced = db.prepare('INSERT INTO fenced (message_id, pid) VALUES (?, ?)');
const insert = db.prepare('INSERT INTO effects (message_id, pid, attempt, at) VALUES (?, ?, ?, ?)');
const receipts = createSqliteReceiptStore({ database: db });
const messaging = createMessaging({
  broker: await openBroker(config.broker),
  service: chaosReceiver.name,
  receipts,
  deadLetters: createSqliteDeadLetterStore({ database: db }),
  maxInFlight: config.maxInFlight,
  ...CONSUMER_TIMEOUTS,
});
const work = (ms: number) => new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));

messaging.handle(chaosReceiver, 'work.submitted', async (_data, ctx) => {
  await work(config.workMs);
  const mark = [{ group: ctx.group, source: ctx.source, messageId: ctx.messageId, state: 'processed' as const, attempt: ctx.attempt }];
  db.transaction(() => {
    if (config.recipe === 'fenced') {
      const [outcome] = receipts.recordSync(mark);
      if (outcome === 'ignored') {
        // Another run committed this message's effect first (this one outlived its claim).
        insertFenced.run(ctx.messageId, process.pid);
        return;
      }
      insert.run(ctx.messageId, process.pid, ctx.attempt, Date.now());
    } else {
      insert.run(ctx.messageId, process.pid, ctx.attempt, Date.now());
      receipts.recordSync(mark);
    }
  })();
});
await messaging.start();
process.stdout.write('ready\n');
