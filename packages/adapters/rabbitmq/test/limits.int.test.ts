import { randomBytes } from 'node:crypto';
import { isSwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createRabbitMqBroker } from '../src/index.js';
import { TopologyTracker } from './topology.js';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `sbl-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, prefix);

afterAll(() => tracker.cleanup());

describe('rabbitmq: message size limit', () => {
  it('takes a body of exactly maxMessageBytes and refuses one byte more with SB_MESSAGE_TOO_LARGE', async () => {
    const limit = 512 * 1024;
    const broker = tracker.track(await createRabbitMqBroker({ url, prefix, maxMessageBytes: limit }));
    expect(broker.capabilities.maxMessageBytes).toBe(limit);
    const topic = randomName('size');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    await broker.publish(testMessage(topic, { body: new Uint8Array(limit).fill(9) }));
    await recorder.waitForCount(1);
    expect(recorder.received[0]!.delivery.body.byteLength).toBe(limit);
    const error = await broker.publish(testMessage(topic, { body: new Uint8Array(limit + 1) })).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect((error as Error).message).toContain(String(limit));
    await broker.close();
  });

  it('refuses headers over the 64 KiB AMQP table limit with SB_MESSAGE_TOO_LARGE and keeps publishing afterwards', async () => {
    const broker = tracker.track(await createRabbitMqBroker({ url, prefix }));
    const topic = randomName('size');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const error = await broker.publish(testMessage(topic, { headers: { big: 'x'.repeat(70 * 1024) } })).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const after = testMessage(topic);
    await broker.publish(after);
    await recorder.waitForCount(1);
    expect(recorder.received[0]!.delivery.id).toBe(after.id);
    await broker.close();
  });
});
