import { createCloudEvent, type Delivery, decodeCloudEvent, encodeCloudEvent } from '@switchboard/core';
import { randomName, waitFor } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisPubSubBroker } from '../src/index.js';

// Redis pub/sub messages are plain structured CloudEvents: a foreign producer PUBLISHes the JSON
// document itself, and what Switchboard publishes is that document, nothing around it.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${randomName('sbps')}:`;
const redis = new Redis(url);
const listener = new Redis(url);

afterAll(async () => {
  await Promise.all([redis.quit(), listener.quit()]);
});

describe('Redis pub/sub carries plain CloudEvents', () => {
  it('receives a structured CloudEvent a foreign client PUBLISHed, twice, and decodes it with the binding', async () => {
    const broker = createRedisPubSubBroker({ url, prefix });
    try {
      const topic = randomName('prices');
      const received: Delivery[] = [];
      await broker.subscribe({ topic, group: randomName('g') }, async (delivery) => {
        received.push(delivery);
      });
      const document = JSON.stringify({
        specversion: '1.0',
        id: 'price-1',
        source: '/feed',
        type: 'com.example.price.changed',
        time: '2026-12-01T10:00:00Z',
        data: { symbol: 'ACME', price: 12.5 },
      });
      expect(await redis.publish(`${prefix}ps:${topic}`, document)).toBeGreaterThan(0);
      expect(await redis.publish(`${prefix}ps:${topic}`, document)).toBeGreaterThan(0);
      await waitFor(() => received.length >= 2, 'two deliveries');
      for (const delivery of received) {
        expect(delivery.headers).toEqual({ 'content-type': 'application/cloudevents+json' });
        expect(delivery.id).toBe('price-1');
        const event = decodeCloudEvent(delivery.headers, delivery.body, broker.binding);
        expect(event).toMatchObject({
          id: 'price-1',
          source: '/feed',
          type: 'com.example.price.changed',
          data: { symbol: 'ACME', price: 12.5 },
        });
      }
    } finally {
      await broker.close();
    }
  });

  it('publishes an event encoded with its binding as the bare JSON document', async () => {
    const broker = createRedisPubSubBroker({ url, prefix });
    try {
      const topic = randomName('prices');
      const channel = `${prefix}ps:${topic}`;
      const seen: string[] = [];
      listener.on('message', (from: string, message: string) => {
        if (from === channel) seen.push(message);
      });
      await listener.subscribe(channel);
      const event = createCloudEvent({ source: '/feed', type: 'com.example.price.changed', data: { price: 1 } });
      const encoded = encodeCloudEvent(event, broker.binding);
      await broker.publish({ id: event.id, topic, headers: encoded.headers, body: encoded.body });
      await waitFor(() => seen.length >= 1, 'the message on the channel');
      expect(seen[0]).toBe(Buffer.from(encoded.body).toString('utf8'));
      expect(JSON.parse(seen[0]!)).toMatchObject({ specversion: '1.0', id: event.id, data: { price: 1 } });
      await listener.unsubscribe(channel);
    } finally {
      await broker.close();
    }
  });
});
