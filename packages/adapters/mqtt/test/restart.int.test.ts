import { isSwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterEach, expect, it } from 'vitest';
import { createMqttBroker, type MqttBroker } from '../src/index.js';
import { PrivateMosquitto } from './mosquitto-server.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('a publish without a server fails with SB_BROKER_UNAVAILABLE after publishTimeoutMs; after the restart both sides work again', async () => {
  const server = new PrivateMosquitto();
  await server.start();
  cleanups.push(() => server.dispose());
  const brokers: MqttBroker[] = [];
  cleanups.push(() => Promise.all(brokers.map((b) => b.close())).then(() => {}));
  const publisher = await createMqttBroker({ url: server.url, publishTimeoutMs: 300 });
  const consumer = await createMqttBroker({ url: server.url });
  brokers.push(publisher, consumer);
  const topic = randomName('restart');
  const recorder = new DeliveryRecorder();
  await consumer.subscribe({ topic, group: randomName('g') }, recorder.handler);
  const before = testMessage(topic);
  await publisher.publish(before);
  await recorder.waitForCount(1);

  await server.stop();
  const lost = testMessage(topic);
  const error = await publisher.publish(lost).catch((e: unknown) => e);
  expect(isSwitchboardError(error, 'SB_BROKER_UNAVAILABLE')).toBe(true);

  await server.start();
  // The subscription comes back by itself (a new session: what was published meanwhile is gone).
  // Publish probes until one arrives; every later message must arrive, in order.
  const probes: string[] = [];
  await waitFor(
    () => {
      if (recorder.count > 1) return true;
      const probe = testMessage(topic);
      probes.push(probe.id);
      publisher.publish(probe).catch(() => {});
      return false;
    },
    'a probe after the restart',
    20_000,
    100,
  );
  const messages = Array.from({ length: 20 }, () => testMessage(topic));
  await publisher.publishBatch(messages);
  await waitFor(() => recorder.ids().filter((id) => messages.some((m) => m.id === id)).length === messages.length, 'the later messages');
  const later = recorder.ids().filter((id) => id !== before.id && !probes.includes(id));
  expect(later).toEqual(messages.map((m) => m.id));
  expect(recorder.ids()).not.toContain(lost.id);
  expect(recorder.duplicates()).toEqual([]);
});
