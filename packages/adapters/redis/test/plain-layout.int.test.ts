import type { Delivery } from '@switchboard/core';
import { decodeCloudEvent } from '@switchboard/core';
import { DeliveryRecorder, randomName } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStreamsBroker } from '../src/broker.js';

// A producer that is not Switchboard writes stream entries by hand with XADD, in the plain layout
// of docs/brokers.md, and the broker's consumers read them as CloudEvents.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${randomName('sbplain')}:`;
const redis = new Redis(url);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describe('Redis Streams plain layout, written by hand with XADD', () => {
  it('reads binary and structured entries, and an entry without a transport id written twice, as CloudEvents', async () => {
    const broker = createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50 });
    try {
      const topic = randomName('orders');
      const group = randomName('billing');
      await broker.declareGroup(topic, group);
      const stream = `${prefix}{${topic}}`;
      // Binary: an attribute per `ce-` field (raw values: no percent-encoding), `content-type`, the data in `body`.
      await redis.xadd(
        stream,
        '*',
        'id',
        'transport-1',
        'ce-specversion',
        '1.0',
        'ce-id',
        'order-1',
        'ce-source',
        '/shop',
        'ce-subject',
        'caf\u00e9 100% "one"',
        'ce-type',
        'com.example.order.placed',
        'ce-time',
        '2026-12-01T10:00:00Z',
        'ce-traceparent',
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        'content-type',
        'application/json',
        'key',
        'customer-7',
        'body',
        '{"total":12.5}',
      );
      // Structured: the whole event as one JSON document, with or without its content type.
      const document = (id: string) =>
        JSON.stringify({
          specversion: '1.0',
          id,
          source: '/shop',
          type: 'com.example.order.paid',
          datacontenttype: 'text/plain',
          data: 'paid',
        });
      await redis.xadd(stream, '*', 'content-type', 'application/cloudevents+json; charset=utf-8', 'body', document('order-2'));
      await redis.xadd(stream, '*', 'body', document('order-3'));
      // No transport id, the same entry twice: two deliveries of one event.
      for (let i = 0; i < 2; i++) {
        await redis.xadd(
          stream,
          '*',
          'ce-specversion',
          '1.0',
          'ce-id',
          'order-4',
          'ce-source',
          '/shop',
          'ce-type',
          'com.example.order.shipped',
        );
      }

      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group }, recorder.handler);
      await recorder.waitForCount(5, 10_000);
      const deliveries = recorder.received.map((r) => r.delivery) as Delivery[];
      const events = deliveries.map((d) => decodeCloudEvent(d.headers, d.body, broker.binding));

      expect(events[0]).toMatchObject({
        specversion: '1.0',
        id: 'order-1',
        source: '/shop',
        subject: 'caf\u00e9 100% "one"',
        type: 'com.example.order.placed',
        time: '2026-12-01T10:00:00Z',
        datacontenttype: 'application/json',
        data: { total: 12.5 },
        extensions: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      });
      expect(deliveries[0]!.id).toBe('transport-1');
      expect(deliveries[0]!.key).toBe('customer-7');
      expect(events[1]).toMatchObject({ id: 'order-2', type: 'com.example.order.paid', datacontenttype: 'text/plain', data: 'paid' });
      expect(events[2]).toMatchObject({ id: 'order-3', data: 'paid' });
      expect(events[3]).toMatchObject({ id: 'order-4', source: '/shop', type: 'com.example.order.shipped' });
      expect(events[4]).toMatchObject({ id: 'order-4', source: '/shop', type: 'com.example.order.shipped' });
      expect(events[3]!.data).toBeUndefined();
      // Without an `id` field the transport id is the stream entry id: one per entry.
      expect(deliveries[3]!.id).toMatch(/^\d+-\d+$/);
      expect(deliveries[4]!.id).toMatch(/^\d+-\d+$/);
      expect(deliveries[3]!.id).not.toBe(deliveries[4]!.id);
    } finally {
      await broker.close();
    }
  });
});
