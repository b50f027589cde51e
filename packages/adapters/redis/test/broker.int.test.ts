import type { Delivery } from '@switchboard/core';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { createRedisStreamsBroker } from '../src/broker.js';
import { startPrivateRedis } from './broker-redis-server.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${randomName('sbtest')}:`;

afterAll(async () => {
  const redis = new Redis(url);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

it('hands over an entry with any fields a producer wrote, in order, without stopping the others', async () => {
  const broker = createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50 });
  const redis = new Redis(url);
  try {
    const topic = randomName('t');
    const group = randomName('g');
    await broker.declareGroup(topic, group);
    const before = testMessage(topic);
    await broker.publish(before);
    const junkId = (await redis.xadd(broker.streamKey(topic), '*', 'junk', 'not a switchboard entry')) as string;
    await redis.xadd(broker.streamKey(topic), '*', 'id', 'with-body', 'x-note', 'caf\u00e9', 'body', 'b');
    const after = testMessage(topic);
    await broker.publish(after);
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group }, recorder.handler);
    await recorder.waitForCount(4, 10_000);
    // Without an `id` field the transport id is the stream entry id.
    expect(recorder.ids()).toEqual([before.id, junkId, 'with-body', after.id]);
    const [, junk, withBody] = recorder.received.map((r) => r.delivery) as Delivery[];
    expect(junk!.headers).toEqual({ junk: 'not a switchboard entry' });
    expect(junk!.body.byteLength).toBe(0);
    expect(withBody!.headers).toEqual({ 'x-note': 'caf\u00e9' });
    expect(Buffer.from(withBody!.body).toString()).toBe('b');
    // Everything was acked: nothing is left pending for the group.
    const pending = (await redis.xpending(broker.streamKey(topic), group)) as [number, ...unknown[]];
    expect(Number(pending[0])).toBe(0);
  } finally {
    await broker.close();
    await redis.quit();
  }
});

it('reads an entry of an earlier version (every header in one JSON field) as it was written', async () => {
  const broker = createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50 });
  const redis = new Redis(url);
  try {
    const topic = randomName('t');
    const group = randomName('g');
    await broker.declareGroup(topic, group);
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'old-1', 'ce-source': '/s', 'ce-type': 't', 'content-type': 'text/plain' };
    await redis.xadd(broker.streamKey(topic), '*', 'id', 'old-1', 'headers', JSON.stringify(headers), 'body', 'hello', 'key', 'k');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group }, recorder.handler);
    await recorder.waitForCount(1, 10_000);
    const delivery = recorder.received[0]!.delivery;
    expect(delivery).toMatchObject({ id: 'old-1', headers, key: 'k' });
    expect(Buffer.from(delivery.body).toString()).toBe('hello');
  } finally {
    await broker.close();
    await redis.quit();
  }
});

it('refuses a header named like a field of the layout (body, id, key) with SB_BAD_REQUEST, writing nothing', async () => {
  const broker = createRedisStreamsBroker({ url, prefix });
  const redis = new Redis(url);
  try {
    const topic = randomName('t');
    await broker.declareGroup(topic, randomName('g'));
    for (const name of ['body', 'id', 'key']) {
      const batch = [testMessage(topic), testMessage(topic, { headers: { [name]: 'x' } })];
      const error = await broker.publishBatch(batch).catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_BAD_REQUEST')).toBe(true);
    }
    expect(await redis.xlen(broker.streamKey(topic))).toBe(0);
  } finally {
    await broker.close();
    await redis.quit();
  }
});

it('refuses a body over the declared limit with SB_MESSAGE_TOO_LARGE, and publishes one at the limit', async () => {
  const broker = createRedisStreamsBroker({ url, prefix, maxMessageBytes: 1000 });
  try {
    expect(broker.capabilities.maxMessageBytes).toBe(1000);
    const topic = randomName('t');
    const tooLarge = await broker.publish(testMessage(topic, { body: new Uint8Array(1001) })).catch((e: unknown) => e);
    expect(isSwitchboardError(tooLarge, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const inBatch = await broker
      .publishBatch([testMessage(topic), testMessage(topic, { body: new Uint8Array(5000) })])
      .catch((e: unknown) => e);
    expect(isSwitchboardError(inBatch, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    // Nothing of the refused batch was written.
    expect(await broker.publish(testMessage(topic, { body: new Uint8Array(1000) }))).toBeUndefined();
  } finally {
    await broker.close();
  }
});

it('refuses persistent: true against a server that does not fsync every write', async () => {
  const broker = createRedisStreamsBroker({ url, prefix, persistent: true });
  const error = await broker.publish(testMessage(randomName('t'))).catch((e: unknown) => e);
  await broker.close();
  // The shared test server runs without `appendonly yes` + `appendfsync always`.
  expect(isSwitchboardError(error, 'SB_CONFIG_INVALID')).toBe(true);
});

it('survives a server restart: publisher and consumer reconnect, no acknowledged message is lost', { timeout: 60_000 }, async () => {
  const server = await startPrivateRedis();
  const errors: string[] = [];
  const publisher = createRedisStreamsBroker({ url: server.url, persistent: true, onError: (e) => errors.push(e.code) });
  const consumer = createRedisStreamsBroker({ url: server.url, persistent: true, pollIntervalMs: 50, onError: (e) => errors.push(e.code) });
  try {
    const topic = randomName('t');
    const group = randomName('g');
    await publisher.declareGroup(topic, group);
    const handled = new Set<string>();
    await consumer.subscribe({ topic, group, ackTimeoutMs: 2000 }, async (delivery) => {
      handled.add(delivery.id);
      await delivery.ack();
    });
    const confirmed: string[] = [];
    const publishSome = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const message = { id: newMessageId(), topic, headers: {}, body: Buffer.from(`n${i}`) };
        await publisher.publish(message);
        confirmed.push(message.id);
      }
    };
    await publishSome(200);
    // A publish in flight while the server goes down waits for the reconnection and then confirms.
    const during = publishSome(200);
    await server.kill();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.start();
    await during;
    await publishSome(200);
    const deadline = Date.now() + 20_000;
    while (confirmed.some((id) => !handled.has(id)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const lost = confirmed.filter((id) => !handled.has(id));
    console.log(
      `redis restart test: confirmed ${confirmed.length}, handled ${handled.size}, lost ${lost.length}, errors reported ${errors.length}`,
    );
    expect(confirmed).toHaveLength(600);
    expect(lost).toEqual([]);
  } finally {
    await Promise.all([publisher.close(), consumer.close()]);
    await server.stop();
  }
});
