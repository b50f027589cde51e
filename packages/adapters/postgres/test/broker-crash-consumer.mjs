// A consumer process for the crash test: appends each MessageId to the log before acking it.
// Arguments: url schema topic group log. Runs the built package.
import { appendFileSync } from 'node:fs';
import { createPostgresBroker } from '@switchboard/postgres';

const [url, schema, topic, group, log] = process.argv.slice(2);
const broker = createPostgresBroker({ url, schema, pollIntervalMs: 100 });
await broker.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 1000 }, async (delivery) => {
  appendFileSync(log, `${delivery.id}\n`);
  await delivery.ack();
});
process.stdout.write('ready\n');
