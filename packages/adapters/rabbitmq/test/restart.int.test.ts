import type { Delivery } from '@switchboard/core';
import { randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitMqBroker } from '../src/index.js';
import { PrivateRabbitMqNode } from './rabbitmq-node.js';

// A node of its own (its own ports, name and data directory): the shared server is never touched.
const node = new PrivateRabbitMqNode();
const CHUNK = 20;
const AFTER_RESTARTS = 1000;

beforeAll(() => node.start());
afterAll(() => node.dispose());

describe('rabbitmq: server restarted mid-stream', () => {
  it('publisher and consumer recover on their own and no confirmed message is lost (clean stop, then crash)', {
    timeout: 90_000,
  }, async () => {
    const options = { url: node.url, publishTimeoutMs: 40_000, maxReconnectDelayMs: 500, heartbeatSeconds: 2 };
    const publisher = await createRabbitMqBroker(options);
    const consumer = await createRabbitMqBroker(options);
    const topic = randomName('restart');
    const group = randomName('workers');
    const seen = new Map<string, number>();
    const attempts = new Map<number, number>();
    await consumer.subscribe({ topic, group, maxInFlight: 64, ackTimeoutMs: 10_000 }, async (delivery: Delivery) => {
      seen.set(delivery.id, (seen.get(delivery.id) ?? 0) + 1);
      attempts.set(delivery.attempt, (attempts.get(delivery.attempt) ?? 0) + 1);
      await delivery.ack().catch(() => {});
    });

    const confirmed: string[] = [];
    const failed: string[] = [];
    let restarted = false;
    let confirmedAfterRestarts = 0;
    // Publishes without pause until both restarts are over and AFTER_RESTARTS more are confirmed,
    // so the server goes away while publishes are in flight and deliveries unacked.
    const publishing = (async () => {
      while (!restarted || confirmedAfterRestarts < AFTER_RESTARTS) {
        const chunk = Array.from({ length: CHUNK }, () => testMessage(topic));
        await Promise.all(
          chunk.map((message) =>
            publisher.publish(message).then(
              () => {
                confirmed.push(message.id);
                if (restarted) confirmedAfterRestarts += 1;
              },
              () => failed.push(message.id),
            ),
          ),
        );
      }
    })();

    const phases: string[] = [];
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const target = confirmed.length + 1000;
      await waitFor(() => confirmed.length >= target && seen.size > 0, `${target} publishes confirmed`, 30_000);
      const before = { confirmed: confirmed.length, seen: seen.size };
      await node.stop(signal);
      await node.start();
      // Both sides came back by themselves: new publishes are confirmed and new deliveries arrive.
      await waitFor(() => confirmed.length >= before.confirmed + 100, `publishes confirmed after ${signal} restart`, 30_000);
      await waitFor(() => seen.size >= before.seen + 100, `deliveries after ${signal} restart`, 30_000);
      phases.push(`${signal}@confirmed=${before.confirmed},seen=${before.seen}`);
    }
    restarted = true;
    await publishing;
    await waitFor(() => confirmed.every((id) => seen.has(id)), 'every confirmed message delivered', 30_000);

    const lost = confirmed.filter((id) => !seen.has(id));
    expect(lost).toEqual([]);
    expect(failed).toEqual([]);
    expect(confirmedAfterRestarts).toBeGreaterThanOrEqual(AFTER_RESTARTS);
    const deliveries = [...seen.values()].reduce((a, b) => a + b, 0);
    console.info(
      `[rabbitmq restart] confirmed=${confirmed.length} failed=${failed.length} distinct=${seen.size} duplicates=${deliveries - seen.size} restarts=${phases.join(' ')} attempts=${JSON.stringify(Object.fromEntries(attempts))}`,
    );
    await Promise.all([publisher.close(), consumer.close()]);
  });
});
