// A consumer process for the crash test: prints each MessageId before acking it.
// Arguments: url prefix topic group. Runs the built package.
import { createRedisStreamsBroker } from '@switchboard/redis';

const [url, prefix, topic, group] = process.argv.slice(2);
const broker = createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50, claimIntervalMs: 200 });
await broker.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 1000 }, async (delivery) => {
  process.stdout.write(`${delivery.id}\n`);
  await delivery.ack();
});
process.stdout.write('ready\n');
