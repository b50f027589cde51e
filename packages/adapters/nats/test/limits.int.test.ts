import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { isSwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createNatsBroker } from '../src/index.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbl${Date.now().toString(36)}`;
const options = { url, prefix };

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  await nc.close();
});

describe('nats: message size limit', () => {
  it('takes a body of exactly maxMessageBytes and refuses one byte more with SB_MESSAGE_TOO_LARGE', async () => {
    const broker = await createNatsBroker(options);
    const limit = broker.capabilities.maxMessageBytes;
    expect(limit).toBe((broker.connection.info?.max_payload ?? 0) - 8 * 1024);
    const topic = randomName('size');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const fits = testMessage(topic, { body: new Uint8Array(limit).fill(7) });
    await broker.publish(fits);
    await recorder.waitForCount(1);
    expect(recorder.received[0]!.delivery.body.byteLength).toBe(limit);

    const error = await broker.publish(testMessage(topic, { body: new Uint8Array(limit + 1) })).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect((error as Error).message).toContain(String(limit));
    await broker.close();
  });

  it('refuses a message whose headers push it over the server max_payload', async () => {
    const broker = await createNatsBroker(options);
    const topic = randomName('size');
    const headers = { big: 'x'.repeat(16 * 1024) };
    const message = testMessage(topic, { body: new Uint8Array(broker.capabilities.maxMessageBytes), headers });
    const error = await broker.publish(message).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect((error as Error).message).toMatch(/max_payload/);
    await broker.close();
  });

  it('a stream with a smaller max_msg_size set by the operator is reported as SB_MESSAGE_TOO_LARGE', async () => {
    const broker = await createNatsBroker(options);
    const topic = randomName('size');
    await broker.declareGroup(topic, randomName('g'));
    const nc = await connect({ servers: url });
    const jsm = await jetstreamManager(nc);
    const stream = `${prefix.toUpperCase()}_${topic}`;
    const info = await jsm.streams.info(stream);
    await jsm.streams.update(stream, { ...info.config, max_msg_size: 1024 });
    const error = await broker.publish(testMessage(topic, { body: new Uint8Array(4096) })).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    await nc.close();
    await broker.close();
  });
});

describe('nats: a stream of another name already captures the subject', () => {
  it('is used as the topic stream (one made under an earlier naming rule, or by an operator)', async () => {
    const topic = randomName('adopt');
    const nc = await connect({ servers: url });
    const jsm = await jetstreamManager(nc);
    const legacy = `${prefix.toUpperCase()}_LEGACY_${topic}`;
    await jsm.streams.add({ name: legacy, subjects: [`${prefix}.${topic}`] });
    const broker = await createNatsBroker(options);
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    await broker.publish(testMessage(topic));
    await recorder.waitForCount(1);
    expect((await jsm.streams.info(legacy)).state.messages).toBe(1);
    await broker.close();
    await nc.close();
  });
});
