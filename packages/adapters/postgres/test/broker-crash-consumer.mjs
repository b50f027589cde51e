// A consumer process for the crash test: prints each MessageId before acking it.
// Arguments: connectionString schema topic group. Runs the built package.
import { createPostgresBroker } from '@switchboard/postgres';

const [connectionString, schema, topic, group] = process.argv.slice(2);
const broker = createPostgresBroker({ connectionString, schema, pollIntervalMs: 100 });
await broker.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 1000 }, async (delivery) => {
  process.stdout.write(`${delivery.id}\n`);
  await delivery.ack();
});
process.stdout.write('ready\n');
