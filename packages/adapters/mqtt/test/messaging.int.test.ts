import { randomBytes } from 'node:crypto';
import { defineContract, event } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { delay, waitFor } from '@switchboard/testkit';
import { afterEach, expect, it } from 'vitest';
import { z } from 'zod';
import { createMqttBroker } from '../src/index.js';

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';

interface Received {
  readonly service: string;
  readonly type: string;
  readonly data: unknown;
  readonly messageId: string;
  readonly attempt: number;
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

it('an at-most-once event over MQTT reaches two services, balanced between the two instances of one', async () => {
  // A fresh contract name per test: its events topic is private to the run.
  const ticker = defineContract({
    name: `ticker-${randomBytes(4).toString('hex')}`,
    events: {
      'price.changed': event({ data: z.object({ symbol: z.string(), price: z.number() }), delivery: 'at-most-once' }),
    },
  });
  const fast = await createMqttBroker({ url, prefix: `sbt-msg-${randomBytes(3).toString('hex')}` });
  const reliable = createMemoryBroker();
  closers.push(
    () => reliable.close(),
    () => fast.close(),
  );
  const receipts = createMemoryReceiptStore();
  const service = (name: string): Messaging => {
    const messaging = createMessaging({
      broker: reliable,
      atMostOnce: { broker: fast },
      service: name,
      receipts,
      deadLetters: createMemoryDeadLetterStore(),
    });
    closers.push(() => messaging.close());
    return messaging;
  };
  const received: Received[] = [];
  const handle = (name: string) => (data: unknown, ctx: { type: string; messageId: string; attempt: number }) => {
    received.push({ service: name, type: ctx.type, data, messageId: ctx.messageId, attempt: ctx.attempt });
  };
  const instances = [
    service('pricing').on(ticker, 'price.changed', handle('pricing#1')),
    service('pricing').on(ticker, 'price.changed', handle('pricing#2')),
    service('audit').on(ticker, 'price.changed', handle('audit')),
  ];
  // Receivers start before the emit: an at-most-once event only reaches who is listening.
  for (const instance of instances) await instance.start();
  const emitter = service(ticker.name);

  const one = await emitter.emit(ticker, 'price.changed', { symbol: 'ACME', price: 42.5 }, { subject: 'ACME' });
  await waitFor(() => received.length >= 2, 'both services to get the event');
  await delay(150);
  expect(received.map((r) => r.service.split('#')[0]).sort()).toEqual(['audit', 'pricing']);
  for (const r of received) {
    expect(r).toMatchObject({
      type: `${ticker.name}.price.changed`,
      data: { symbol: 'ACME', price: 42.5 },
      messageId: one.messageId,
      attempt: 1,
    });
  }
  // Receipts are bypassed on the at-most-once path.
  expect(await receipts.getAll(one.messageId)).toEqual([]);

  received.length = 0;
  const sent = await emitter.emitBatch(
    ticker,
    Array.from({ length: 40 }, (_, i) => ({ name: 'price.changed' as const, data: { symbol: `S${i}`, price: i } })),
  );
  await waitFor(() => received.length >= 80, `every event to both services (have ${received.length})`);
  await delay(150);
  const ids = new Set(sent.map((s) => s.messageId));
  const pricing = received.filter((r) => r.service.startsWith('pricing'));
  const audit = received.filter((r) => r.service === 'audit');
  // Each service handles each event once; within pricing, both instances took part.
  expect(pricing).toHaveLength(40);
  expect(new Set(pricing.map((r) => r.messageId))).toEqual(ids);
  expect(audit).toHaveLength(40);
  expect(new Set(audit.map((r) => r.messageId))).toEqual(ids);
  expect(new Set(pricing.map((r) => r.service))).toEqual(new Set(['pricing#1', 'pricing#2']));
});
