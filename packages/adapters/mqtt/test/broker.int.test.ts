import { randomBytes } from 'node:crypto';
import { isSwitchboardError, type SwitchboardError } from '@switchboard/core';
import { DeliveryRecorder, delay, randomName, testMessage, waitFor } from '@switchboard/testkit';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MqttSubscription } from '../src/index.js';
import { createMqttBroker, type MqttBroker, type MqttBrokerOptions } from '../src/index.js';
import { PrivateMosquitto } from './mosquitto-server.js';

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const prefix = `sbt-mqtt-${randomBytes(4).toString('hex')}`;

/** Resolves on the client's next CONNACK. */
function connected(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('connect', () => resolve()));
}

const opened: MqttBroker[] = [];
async function open(options: MqttBrokerOptions = {}): Promise<MqttBroker> {
  const broker = await createMqttBroker({ url, prefix, ...options });
  opened.push(broker);
  return broker;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((broker) => broker.close()));
});

describe('message size', () => {
  it('takes a body of exactly maxMessageBytes and refuses one byte more with SB_MESSAGE_TOO_LARGE', async () => {
    const broker = await open({ maxMessageBytes: 1024 });
    expect(broker.capabilities.maxMessageBytes).toBe(1024);
    const topic = randomName('size');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const atLimit = testMessage(topic, { body: new Uint8Array(1024).fill(7) });
    await broker.publish(atLimit);
    const tooLarge = await broker.publish(testMessage(topic, { body: new Uint8Array(1025) })).catch((e: unknown) => e);
    expect(isSwitchboardError(tooLarge, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    // One oversized message refuses the whole batch before anything is sent.
    const batch = [testMessage(topic), testMessage(topic, { body: new Uint8Array(2048) }), testMessage(topic)];
    const inBatch = await broker.publishBatch(batch).catch((e: unknown) => e);
    expect(isSwitchboardError(inBatch, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const after = testMessage(topic);
    await broker.publish(after);
    await recorder.waitForCount(2);
    await delay(200);
    expect(recorder.ids()).toEqual([atLimit.id, after.id]);
    expect(recorder.received[0]!.delivery.body.byteLength).toBe(1024);
  });

  describe('on a server with max_packet_size', () => {
    const server = new PrivateMosquitto();
    beforeAll(() => server.start(['max_packet_size 1048576']));
    afterAll(() => server.dispose());

    it("derives maxMessageBytes from the server's maximum packet size and refuses what would not fit", async () => {
      const broker = await open({ url: server.url });
      const limit = 1048576 - 64 * 1024;
      expect(broker.capabilities.maxMessageBytes).toBe(limit);
      const topic = randomName('size');
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
      const atLimit = testMessage(topic, { body: new Uint8Array(limit).fill(1) });
      await broker.publish(atLimit);
      await recorder.waitForCount(1);
      expect(recorder.received[0]!.delivery.body.byteLength).toBe(limit);

      const over = await broker.publish(testMessage(topic, { body: new Uint8Array(limit + 1) })).catch((e: unknown) => e);
      expect(isSwitchboardError(over, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
      // Body under the limit, but with headers the packet would exceed the server's maximum.
      const bigHeaders = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`x-big-${i}`, 'h'.repeat(60_000)]));
      const headersOver = await broker
        .publish(testMessage(topic, { body: new Uint8Array(limit - 1000), headers: bigHeaders }))
        .catch((e: unknown) => e);
      expect(isSwitchboardError(headersOver, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
      // A header value MQTT cannot frame (over 65 535 bytes) is refused the same way.
      const longHeader = await broker.publish(testMessage(topic, { headers: { 'x-long': 'h'.repeat(70_000) } })).catch((e: unknown) => e);
      expect(isSwitchboardError(longHeader, 'SB_MESSAGE_TOO_LARGE')).toBe(true);

      // The connection is still usable: nothing oversized reached the server.
      const small = testMessage(topic);
      await broker.publish(small);
      await recorder.waitForCount(2);
      expect(recorder.ids()).toEqual([atLimit.id, small.id]);
    });
  });
});

describe('headers', () => {
  it('carries headers, MessageId and key as user properties, escaping what MQTT strings cannot hold', async () => {
    const broker = await open();
    const topic = randomName('headers');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const plain = testMessage(topic, {
      headers: { 'ce-specversion': '1.0', 'ce-type': 'com.example.created', 'ce-source': '/tests', 'x-percent': '100% %25' },
      key: 'k-1',
    });
    const awkward = testMessage(topic, {
      headers: {
        'x-lines': 'a\r\nb\tc',
        'x-nul': 'x\u0000y',
        'x-c1': '\u0085\u009f',
        'x-noncharacter': '\ufffe\u{1fffe}',
        'x-lone': 'a\ud800b',
        'x-percent': '%u0041 and %25',
        'x-\u0001name': 'v',
      },
      key: 'key\nwith a line',
    });
    await broker.publishBatch([plain, awkward]);
    await recorder.waitForCount(2);
    const byId = new Map(recorder.received.map((r) => [r.delivery.id, r.delivery]));
    for (const message of [plain, awkward]) {
      const delivery = byId.get(message.id)!;
      expect(delivery.headers).toEqual(message.headers);
      expect(delivery.key).toBe(message.key);
    }
  });
});

describe('reconnect', () => {
  it("a publish made while the publisher's connection is down resolves after the reconnect and is delivered", async () => {
    const publisher = await open();
    const consumer = await open();
    const topic = randomName('reconnect');
    const recorder = new DeliveryRecorder();
    await consumer.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const closed = new Promise<void>((resolve) => publisher.client.once('close', () => resolve()));
    const reconnected = connected(publisher.client);
    publisher.client.stream.destroy();
    await closed;
    expect(publisher.client.connected).toBe(false);
    const message = testMessage(topic);
    const published = publisher.publish(message);
    await reconnected;
    await published;
    await recorder.waitForCount(1);
    await delay(200);
    expect(recorder.ids()).toEqual([message.id]);
  });

  it('a publish whose connection drops before the PUBACK rejects with SB_BROKER_UNAVAILABLE and is not sent again', async () => {
    const publisher = await open();
    const consumer = await open();
    const topic = randomName('reconnect');
    const recorder = new DeliveryRecorder();
    await consumer.subscribe({ topic, group: randomName('g') }, recorder.handler);
    const reconnected = connected(publisher.client);
    const message = testMessage(topic);
    // Written to the socket, which is destroyed before any answer can come back.
    const published = publisher.publish(message);
    publisher.client.stream.destroy();
    const error = await published.catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_BROKER_UNAVAILABLE')).toBe(true);
    expect((error as SwitchboardError).detail).toMatch(/lost before the PUBACK/);
    await reconnected;
    // The connection works again; the lost publish reached the group at most once (here: once
    // if the server read it before the socket closed, else never).
    const after = testMessage(topic);
    await publisher.publish(after);
    await waitFor(() => recorder.ids().includes(after.id), 'the publish after the reconnect');
    await delay(200);
    expect(recorder.ids().filter((id) => id === message.id).length).toBeLessThanOrEqual(1);
    expect(recorder.duplicates()).toEqual([]);
  });

  it('a subscription whose socket was destroyed subscribes again on reconnect and receives new messages', async () => {
    const broker = await open();
    const topic = randomName('reconnect');
    const recorder = new DeliveryRecorder();
    const subscription = (await broker.subscribe({ topic, group: randomName('g') }, recorder.handler)) as MqttSubscription;
    const reconnected = connected(subscription.client);
    subscription.client.stream.destroy();
    await reconnected;
    // At most once: what is published before the server has the subscription again is lost. Probe
    // until one probe arrives, then every later message must.
    const probes: string[] = [];
    await waitFor(
      () => {
        if (recorder.count > 0) return true;
        const probe = testMessage(topic, { headers: { probe: 'yes' } });
        probes.push(probe.id);
        void broker.publish(probe);
        return false;
      },
      'a probe to arrive after the reconnect',
      10_000,
      50,
    );
    expect(probes).toContain(recorder.ids()[0]);
    const before = recorder.count;
    const messages = Array.from({ length: 20 }, () => testMessage(topic));
    await broker.publishBatch(messages);
    await waitFor(() => recorder.count >= before + messages.length, 'the messages after the reconnect');
    await delay(200);
    const later = recorder.ids().filter((id) => !probes.includes(id));
    expect(later).toEqual(messages.map((m) => m.id));
    expect(recorder.duplicates()).toEqual([]);
  });

  it('refuses to open against a server that is not there, with SB_BROKER_UNAVAILABLE', async () => {
    const server = new PrivateMosquitto();
    await server.start();
    const gone = server.url;
    await server.dispose();
    const error = await createMqttBroker({ url: gone, connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_BROKER_UNAVAILABLE')).toBe(true);
  });
});

describe('options', () => {
  it('refuses topic and group names MQTT cannot take with SB_CONFIG_INVALID', async () => {
    const broker = await open();
    const noop = async () => {};
    for (const [topic, group] of [
      ['a/+', 'g'],
      ['a/#', 'g'],
      ['', 'g'],
      ['t', 'a/b'],
      ['t', 'a+b'],
      ['t', ''],
      ['t', 'has space'],
    ] as const) {
      const error = await broker.subscribe({ topic, group }, noop).catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_CONFIG_INVALID'), `${topic} / ${group}`).toBe(true);
    }
    const publishError = await broker.publish(testMessage('a/#')).catch((e: unknown) => e);
    expect(isSwitchboardError(publishError, 'SB_CONFIG_INVALID')).toBe(true);
    const prefixError = await createMqttBroker({ url, prefix: '$SYS' }).catch((e: unknown) => e);
    expect(isSwitchboardError(prefixError, 'SB_CONFIG_INVALID')).toBe(true);
  });
});
