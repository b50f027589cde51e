// A change relay process for the SQLite crash test: it relays the outbox the change triggers write
// to, through the SQLite broker, and prints `confirmed <n> <size>` after the broker confirmed its
// n-th batch. With hangAfter > 0 it stops inside the hangAfter-th batch right after the broker's
// confirm, before the entries are marked sent (the test then SIGKILLs it: killed between the
// broker's confirm and the outbox's mark); with 0 it runs until killed.
// Usage: node sqlite-change-relay-crash-child.mjs <app.db> <broker.db> <table> <hangAfter> <batchSize> <leaseMs>
import { writeSync } from 'node:fs';
import { createSqliteChangeRelay } from '@switchboard/changes';
import { changes, defineContract } from '@switchboard/core';
import { createSqliteBroker, createSqliteOutbox } from '@switchboard/sqlite';
import { z } from 'zod';

const [appPath, brokerPath, table, hangAfter, batchSize, leaseMs] = process.argv.slice(2);
const contract = defineContract({
  name: 'crash',
  changes: [
    changes(table, { columns: z.object({ id: z.number(), n: z.number() }), key: 'id', insert: 'item.created', update: 'item.changed' }),
  ],
});
const inner = createSqliteBroker({ path: brokerPath });
let confirmed = 0;
const broker = {
  name: inner.name,
  binding: inner.binding,
  capabilities: inner.capabilities,
  publish: (message) => broker.publishBatch([message]),
  async publishBatch(messages) {
    await inner.publishBatch(messages);
    confirmed++;
    writeSync(1, `confirmed ${confirmed} ${messages.length}\n`);
    if (confirmed === Number(hangAfter)) {
      // Hang here, alive (a pending promise alone could let the process exit), until SIGKILLed.
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    }
  },
  declareGroup: (topic, group) => inner.declareGroup(topic, group),
  subscribe: (options, handler) => inner.subscribe(options, handler),
  close: () => inner.close(),
};
const outbox = createSqliteOutbox({ path: appPath });
const relay = createSqliteChangeRelay({
  outbox,
  broker,
  contracts: contract,
  deadLetters: false,
  batchSize: Number(batchSize),
  leaseMs: Number(leaseMs),
  pollIntervalMs: 20,
  retryBaseMs: 20,
  retryMaxMs: 200,
});
relay.start();
writeSync(1, 'ready\n');
