// A change source process for the crash test. It publishes through the PostgreSQL broker and
// prints `confirmed <n>` after the broker confirmed its n-th batch. With hangAfter > 0 it stops
// inside the hangAfter-th batch right after the broker's confirm, before the slot can move (the test
// then SIGKILLs it: killed between the broker's confirm and the slot's); with 0 it runs until killed.
// Usage: node change-source-crash-child.mjs <connection> <table> <slot> <publication> <broker schema> <hangAfter> <batchSize>
import { writeSync } from 'node:fs';
import { createPostgresChangeSource } from '@switchboard/changes';
import { changes, defineContract } from '@switchboard/core';
import { createPostgresBroker, createPostgresDeadLetterStore } from '@switchboard/postgres';
import { z } from 'zod';

const [connection, table, slot, publication, schema, hangAfter, batchSize] = process.argv.slice(2);
const contract = defineContract({
  name: 'crash',
  changes: [
    changes(table, { columns: z.object({ id: z.number(), n: z.number() }), key: 'id', insert: 'item.created', update: 'item.changed' }),
  ],
});
const inner = createPostgresBroker({ url: connection, schema });
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
const source = createPostgresChangeSource({
  connection,
  contract,
  broker,
  slot,
  publication,
  deadLetters: createPostgresDeadLetterStore({ connectionString: connection, table: 'crash_dead_letters' }),
  batchSize: Number(batchSize),
  retry: { baseMs: 50, maxMs: 500 },
});
await source.start();
writeSync(1, 'ready\n');
