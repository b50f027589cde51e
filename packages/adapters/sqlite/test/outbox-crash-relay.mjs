// A relay process for the outbox crash test. It publishes through the SQLite broker, reports each
// confirmed batch, and after the `hangAfter`-th confirm stops before marking that batch sent (the
// test then SIGKILLs it: killed between the broker's confirm and the outbox's mark).
// Usage: node outbox-crash-relay.mjs <outbox.db> <broker.db> <hangAfter> <batchSize> <leaseMs>
import { writeSync } from 'node:fs';
import { createOutboxRelay } from '@switchboard/core';
import { createSqliteBroker, createSqliteOutbox } from '@switchboard/sqlite';

const [outboxPath, brokerPath, hangAfter, batchSize, leaseMs] = process.argv.slice(2);
const outbox = createSqliteOutbox({ path: outboxPath });
const sqliteBroker = createSqliteBroker({ path: brokerPath });
let confirmed = 0;
const broker = {
  name: sqliteBroker.name,
  capabilities: sqliteBroker.capabilities,
  publish: (message) => broker.publishBatch([message]),
  async publishBatch(messages) {
    await sqliteBroker.publishBatch(messages);
    confirmed++;
    writeSync(1, `confirmed ${messages.map((m) => m.id).join(',')}\n`);
    if (confirmed === Number(hangAfter)) {
      // Hang here, alive (a pending promise alone would let the process exit), until SIGKILLed.
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    }
  },
  declareGroup: (topic, group) => sqliteBroker.declareGroup(topic, group),
  subscribe: (options, handler) => sqliteBroker.subscribe(options, handler),
  close: () => sqliteBroker.close(),
};
const relay = createOutboxRelay({ store: outbox, broker, batchSize: Number(batchSize), leaseMs: Number(leaseMs), pollIntervalMs: 20 });
relay.start();
writeSync(1, 'ready\n');
