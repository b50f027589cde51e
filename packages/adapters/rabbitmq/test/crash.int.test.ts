import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createRabbitMqBroker } from '../src/index.js';
import { ConsumerProcess } from './consumer-process.js';
import { TopologyTracker } from './topology.js';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchangePrefix = `sbc-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, exchangePrefix);
// The child runs the built package (`tsc -b packages/adapters/rabbitmq`).
const script = fileURLToPath(new URL('./fixtures/consumer.mjs', import.meta.url));
const TOTAL = 10_000;

afterAll(() => tracker.cleanup());

describe('rabbitmq: consumer process killed mid-stream', () => {
  it(`loses none of ${TOTAL} messages while the consumer is SIGKILLed twice`, { timeout: 180_000 }, async () => {
    const broker = tracker.track(await createRabbitMqBroker({ url, exchangePrefix }));
    const topic = randomName('crash');
    const group = randomName('workers');
    await broker.declareGroup(topic, group);

    const seen = new Map<string, number>();
    const attempts = new Map<number, number>();
    let deliveries = 0;
    const onDelivery = (id: string, attempt: number) => {
      deliveries += 1;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      attempts.set(attempt, (attempts.get(attempt) ?? 0) + 1);
    };
    const start = async () => {
      const consumer = new ConsumerProcess(script, [url, exchangePrefix, topic, group], onDelivery);
      await consumer.ready;
      return consumer;
    };

    const messages = Array.from({ length: TOTAL }, () => testMessage(topic));
    let consumer = await start();
    const publishing = (async () => {
      for (let i = 0; i < messages.length; i += 500) await broker.publishBatch(messages.slice(i, i + 500));
    })();
    const seenAtKill: number[] = [];
    for (const threshold of [TOTAL * 0.25, TOTAL * 0.6]) {
      await waitFor(() => seen.size >= threshold, `${threshold} distinct messages`, 60_000);
      seenAtKill.push(seen.size);
      await consumer.kill('SIGKILL');
      consumer = await start();
    }
    await publishing;
    await waitFor(() => seen.size >= TOTAL, `all ${TOTAL} distinct messages`, 90_000);
    await consumer.kill('SIGTERM');
    await broker.close();

    const missing = messages.filter((message) => !seen.has(message.id));
    expect(missing).toEqual([]);
    expect(seen.size).toBe(TOTAL);
    expect(seenAtKill.every((count) => count < TOTAL)).toBe(true);
    // Every redelivery after a kill says so in its attempt number (some first copies died unprinted
    // in the killed consumer's buffer, so there can be more later attempts than duplicates).
    const laterAttempts = [...attempts.entries()].filter(([n]) => n > 1).reduce((sum, [, count]) => sum + count, 0);
    expect(laterAttempts).toBeGreaterThanOrEqual(deliveries - TOTAL);
    expect(laterAttempts).toBeGreaterThan(0);
    console.info(
      `[rabbitmq crash] published=${TOTAL} distinct=${seen.size} deliveries=${deliveries} duplicates=${deliveries - seen.size} killedAt=${seenAtKill.join(',')} attempts=${JSON.stringify(Object.fromEntries(attempts))}`,
    );
  });
});
