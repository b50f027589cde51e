// A consumer process for the crash test: appends each MessageId to the log before acking it.
// Arguments: url prefix topic group log. Runs the built package.
import { appendFileSync } from 'node:fs';
import { createRedisStreamsBroker } from '@switchboard/redis';

const [url, prefix, topic, group, log] = process.argv.slice(2);
const broker = createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50, claimIntervalMs: 200 });
await broker.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 1000 }, async (delivery) => {
  appendFileSync(log, `${delivery.id}\n`);
  await delivery.ack();
});
process.stdout.write('ready\n');
