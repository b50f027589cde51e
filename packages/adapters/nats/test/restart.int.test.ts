import type { Delivery } from '@switchboard/core';
import { randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsBroker } from '../src/index.js';
import { PrivateNatsServer } from './nats-server.js';

const TOTAL = 3000;
const server = new PrivateNatsServer();

beforeAll(() => server.start());
afterAll(() => server.dispose());

describe('nats: server restarted mid-stream', () => {
  it('publisher and consumer reconnect and no acknowledged message is lost', { timeout: 60_000 }, async () => {
    const publisher = await createNatsBroker({ url: server.url, publishTimeoutMs: 20_000 });
    const consumer = await createNatsBroker({ url: server.url });
    const topic = randomName('restart');
    const group = randomName('workers');
    const seen = new Map<string, number>();
    await consumer.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 2000 }, async (delivery: Delivery) => {
      seen.set(delivery.id, (seen.get(delivery.id) ?? 0) + 1);
      await delivery.ack().catch(() => {});
    });

    const confirmed: string[] = [];
    const failed: string[] = [];
    const messages = Array.from({ length: TOTAL }, () => testMessage(topic));
    const publishing = (async () => {
      for (let i = 0; i < messages.length; i += 50) {
        const chunk = messages.slice(i, i + 50);
        await Promise.all(
          chunk.map((message) =>
            publisher.publish(message).then(
              () => confirmed.push(message.id),
              () => failed.push(message.id),
            ),
          ),
        );
      }
    })();

    await waitFor(() => confirmed.length >= TOTAL / 3, 'a third of the publishes confirmed', 20_000);
    await server.stop();
    const confirmedWhileDown = confirmed.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.start();
    await publishing;
    await waitFor(() => confirmed.every((id) => seen.has(id)), 'every confirmed message delivered', 30_000);

    const lost = confirmed.filter((id) => !seen.has(id));
    expect(lost).toEqual([]);
    expect(failed).toEqual([]);
    expect(confirmed.length).toBe(TOTAL);
    expect(confirmedWhileDown).toBeLessThan(TOTAL);
    const deliveries = [...seen.values()].reduce((a, b) => a + b, 0);
    console.info(
      `[nats restart] published=${TOTAL} confirmed=${confirmed.length} failed=${failed.length} distinct=${seen.size} duplicates=${deliveries - seen.size} confirmedBeforeRestart=${confirmedWhileDown}`,
    );
    await Promise.all([publisher.close(), consumer.close()]);
  });
});
