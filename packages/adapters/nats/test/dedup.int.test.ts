import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { newMessageId } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createNatsBroker } from '../src/index.js';
import { topicNames } from '../src/names.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbd${Date.now().toString(36)}`;
const quietMs = 400;

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  await nc.close();
});

describe('nats: JetStream publish deduplication names the event, not only its id', () => {
  it('drops a republish of the same message, keeps events of two sources (or two signatures) that share an id', async () => {
    const broker = await createNatsBroker({ url, prefix });
    const topic = randomName('dedup');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    // What reaches the subject on the wire (a plain core subscriber, beside JetStream): the Nats-Msg-Id values.
    const nc = await connect({ servers: url });
    const wire: string[] = [];
    nc.subscribe(topicNames(prefix, topic).subject, {
      callback: (_error, msg) => {
        wire.push(msg.headers?.get('Nats-Msg-Id') ?? '');
      },
    });
    await nc.flush();
    const id = newMessageId();
    const fromA = testMessage(topic, { id, headers: { 'ce-id': id, 'ce-source': 'svc-a', 'ce-type': 't' } });
    await broker.publish(fromA);
    await broker.publish(fromA); // a retry: JetStream drops it
    await broker.publish(testMessage(topic, { id, headers: { 'ce-id': id, 'ce-source': 'svc-b', 'ce-type': 't' } }));
    await broker.publish(
      testMessage(topic, { id, headers: { 'ce-id': id, 'ce-source': 'svc-a', 'ce-type': 't', 'ce-sbsignature': 'hmac-sha256;k2;forged' } }),
    );
    await recorder.waitForCount(3);
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    expect(recorder.count).toBe(3);
    // The delivery's id is the MessageId as published, whatever the deduplication id around it.
    expect(recorder.received.map((r) => r.delivery.id)).toEqual([id, id, id]);
    expect(recorder.received.map((r) => r.delivery.headers['ce-source'])).toEqual(['svc-a', 'svc-b', 'svc-a']);

    // Four publishes on the wire, three distinct Nats-Msg-Id values, each the id and a digest.
    expect(wire).toHaveLength(4);
    expect(new Set(wire).size).toBe(3);
    for (const msgId of wire) expect(msgId).toMatch(new RegExp(`^${id}~d[A-Za-z0-9_-]{22}$`));
    await nc.close();
    await broker.close();
  });
});
