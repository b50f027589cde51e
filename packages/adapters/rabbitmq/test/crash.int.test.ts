import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ConsumerProcesses, randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createRabbitMqBroker } from '../src/index.js';
import { TopologyTracker } from './topology.js';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `sbc-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, prefix);
// The child runs the built package (`tsc -b packages/adapters/rabbitmq`).
const script = fileURLToPath(new URL('./fixtures/consumer.mjs', import.meta.url));
const TOTAL = 10_000;

afterAll(() => tracker.cleanup());

describe('rabbitmq: consumer process killed mid-stream', () => {
  it(`loses none of ${TOTAL} messages while the consumer is SIGKILLed twice`, { timeout: 180_000 }, async () => {
    const broker = tracker.track(await createRabbitMqBroker({ url, prefix }));
    const topic = randomName('crash');
    const group = randomName('workers');
    await broker.declareGroup(topic, group);

    const consumers = new ConsumerProcesses(script, [url, prefix, topic, group]);
    const messages = Array.from({ length: TOTAL }, () => testMessage(topic));
    await consumers.start();
    const publishing = (async () => {
      for (let i = 0; i < messages.length; i += 500) await broker.publishBatch(messages.slice(i, i + 500));
    })();
    const seenAtKill: number[] = [];
    for (const threshold of [TOTAL * 0.25, TOTAL * 0.6]) {
      await waitFor(() => consumers.distinct() >= threshold, `${threshold} distinct messages`, 60_000);
      seenAtKill.push(consumers.distinct());
      await consumers.kill('SIGKILL');
      await consumers.start();
    }
    await publishing;
    await waitFor(() => consumers.distinct() >= TOTAL, `all ${TOTAL} distinct messages`, 90_000);
    await consumers.kill('SIGTERM');
    await broker.close();

    const seen = new Set(consumers.handled);
    const deliveries = consumers.handled.length;
    await consumers.dispose();
    const missing = messages.filter((message) => !seen.has(message.id));
    expect(missing).toEqual([]);
    expect(seen.size).toBe(TOTAL);
    expect(seenAtKill.every((count) => count < TOTAL)).toBe(true);
    // Every redelivery after a kill says so in its attempt number (a message the killed consumer
    // received but had not handled yet is logged once, as a later attempt, so there can be more
    // later attempts than duplicates).
    const attempts = consumers.attempts();
    const laterAttempts = [...attempts.entries()].filter(([n]) => n > 1).reduce((sum, [, count]) => sum + count, 0);
    expect(laterAttempts).toBeGreaterThanOrEqual(deliveries - TOTAL);
    expect(laterAttempts).toBeGreaterThan(0);
    console.info(
      `[rabbitmq crash] published=${TOTAL} distinct=${seen.size} deliveries=${deliveries} duplicates=${deliveries - seen.size} killedAt=${seenAtKill.join(',')} attempts=${JSON.stringify(Object.fromEntries(attempts))}`,
    );
  });
});
