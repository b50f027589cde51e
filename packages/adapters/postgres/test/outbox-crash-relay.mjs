// A relay process for the outbox crash test. It publishes through the PostgreSQL broker, reports
// each confirmed batch, and after the `hangAfter`-th confirm stops before marking that batch sent
// (the test then SIGKILLs it: killed between the broker's confirm and the outbox's mark).
// Usage: node outbox-crash-relay.mjs <connectionString> <outbox table> <broker schema> <hangAfter> <batchSize> <leaseMs>
import { writeSync } from 'node:fs';
import { createOutboxRelay } from '@switchboard/core';
import { createPostgresBroker, createPostgresOutbox } from '@switchboard/postgres';

const [connectionString, table, schema, hangAfter, batchSize, leaseMs] = process.argv.slice(2);
const outbox = createPostgresOutbox({ connectionString, table });
const pgBroker = createPostgresBroker({ url: connectionString, schema });
let confirmed = 0;
const broker = {
  name: pgBroker.name,
  capabilities: pgBroker.capabilities,
  publish: (message) => broker.publishBatch([message]),
  async publishBatch(messages) {
    await pgBroker.publishBatch(messages);
    confirmed++;
    writeSync(1, `confirmed ${messages.map((m) => m.id).join(',')}\n`);
    if (confirmed === Number(hangAfter)) {
      // Hang here, alive (a pending promise alone could let the process exit), until SIGKILLed.
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    }
  },
  declareGroup: (topic, group) => pgBroker.declareGroup(topic, group),
  subscribe: (options, handler) => pgBroker.subscribe(options, handler),
  close: () => pgBroker.close(),
};
const relay = createOutboxRelay({ store: outbox, broker, batchSize: Number(batchSize), leaseMs: Number(leaseMs), pollIntervalMs: 20 });
relay.start();
writeSync(1, 'ready\n');
