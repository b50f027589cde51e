import { randomBytes } from 'node:crypto';
import { connectBroker } from '@switchboard/connect';
import type { Broker } from '@switchboard/core';
import { createMqttBroker } from '@switchboard/mqtt';
import { expect, it } from 'vitest';

const suffix = randomBytes(4).toString('hex');

/** Subscribes; resolves once subscribed, with the body of the first delivery to come. */
async function firstBody(broker: Broker, topic: string, group: string): Promise<{ body: Promise<string> }> {
  let resolve: (body: string) => void = () => {};
  const body = new Promise<string>((r) => {
    resolve = r;
  });
  await broker.subscribe({ topic, group }, async (delivery) => resolve(Buffer.from(delivery.body).toString()));
  return { body };
}

// Separate from engines.int.test.ts: an at-most-once broker delivers only to subscriptions that
// exist when the message is published, so this one awaits the subscriptions before publishing.
it('connectBroker(mqtt://...?prefix=) opens the at-most-once MQTT broker under that topic prefix', async () => {
  const prefix = `sbconnect-${suffix}`;
  const broker = await connectBroker(`mqtt://127.0.0.1:1883?prefix=${prefix}`);
  // A broker opened directly with the same prefix shares the topics; the default prefix does not.
  const samePrefix = await createMqttBroker({ url: 'mqtt://127.0.0.1:1883', prefix: prefix });
  try {
    expect(broker.name).toBe('mqtt');
    expect(broker.capabilities.delivery).toBe('at-most-once');
    const topic = `connect-${suffix}`;
    const viaUrl = await firstBody(broker, topic, 'via-url');
    const direct = await firstBody(samePrefix, topic, 'direct');
    await broker.publish({ id: `m-${suffix}`, topic, headers: { 'ce-type': 'x' }, body: Buffer.from('hello mqtt') });
    expect(await viaUrl.body).toBe('hello mqtt');
    expect(await direct.body).toBe('hello mqtt');
  } finally {
    await Promise.all([broker.close(), samePrefix.close()]);
  }
});
