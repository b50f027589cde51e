import { randomBytes } from 'node:crypto';
import type { Broker, Delivery } from '@switchboard/core';
import { decodeStructured, defineContract, event, isSwitchboardError } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { createNatsCoreBroker } from '@switchboard/nats';
import { createRedisPubSubBroker } from '@switchboard/redis';
import { delay, waitFor } from '@switchboard/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function emitterContract() {
  // A fresh contract name per test: its events topic is private to the test.
  return defineContract({
    name: `ticker-${randomBytes(4).toString('hex')}`,
    events: {
      'price.changed': event({ data: z.object({ symbol: z.string(), price: z.number() }), delivery: 'at-most-once' }),
      'order.placed': event({ data: z.object({ id: z.string() }) }),
    },
  });
}

interface Received {
  readonly service: string;
  readonly type: string;
  readonly data: unknown;
  readonly messageId: string;
  readonly attempt: number;
}

const engines: { name: string; open(): Promise<Broker> }[] = [
  { name: 'nats-core', open: () => createNatsCoreBroker({ url: natsUrl, prefix: `sbt-msg-${randomBytes(3).toString('hex')}` }) },
  {
    name: 'redis-pubsub',
    open: async () => createRedisPubSubBroker({ url: redisUrl, prefix: `sbt-msg-${randomBytes(3).toString('hex')}:` }),
  },
];

describe.each(engines)('at-most-once events over $name', ({ open }) => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function setup() {
    const fast = await open();
    const reliable = createMemoryBroker();
    closers.push(
      () => reliable.close(),
      () => fast.close(),
    );
    const receipts = createMemoryReceiptStore();
    const received: Received[] = [];
    const service = (name: string, group = name): Messaging => {
      const messaging = createMessaging({
        broker: reliable,
        atMostOnce: { broker: fast },
        service: name,
        group,
        receipts,
        deadLetters: createMemoryDeadLetterStore(),
      });
      closers.push(() => messaging.close());
      return messaging;
    };
    return { fast, reliable, receipts, received, service };
  }

  it('emits one at-most-once event to two services, each handling it once with the envelope intact', async () => {
    const ticker = emitterContract();
    const { received, receipts, service } = await setup();
    const receivers = ['pricing', 'audit'].map((name) =>
      service(name)
        .on(ticker, 'price.changed', (data, ctx) => {
          received.push({ service: name, type: ctx.type, data, messageId: ctx.messageId, attempt: ctx.attempt });
        })
        .on(ticker, 'order.placed', (data, ctx) => {
          received.push({ service: name, type: ctx.type, data, messageId: ctx.messageId, attempt: ctx.attempt });
        }),
    );
    // Receivers start before the emit: an at-most-once event only reaches who is listening.
    for (const receiver of receivers) await receiver.start();
    const emitter = service(ticker.name);
    const { messageId } = await emitter.emit(ticker, 'price.changed', { symbol: 'ACME', price: 42.5 }, { subject: 'ACME' });
    await waitFor(() => received.length >= 2, 'both services to get the event');
    await delay(100);
    expect(received.map((r) => r.service).sort()).toEqual(['audit', 'pricing']);
    for (const r of received) {
      expect(r).toMatchObject({ type: `${ticker.name}.price.changed`, data: { symbol: 'ACME', price: 42.5 }, messageId, attempt: 1 });
    }
    // The inbox and receipts were bypassed.
    expect(await receipts.getAll(messageId)).toEqual([]);

    // A reliable event of the same contract still travels the reliable path, with receipts.
    const order = await emitter.emit(ticker, 'order.placed', { id: 'o-1' });
    await waitFor(() => received.length >= 4, 'the reliable event');
    await waitFor(() => received.filter((r) => r.messageId === order.messageId).length === 2, 'the reliable event in both');
    const groups = (await receipts.getAll(order.messageId)).map((r) => r.group);
    expect(groups.sort()).toEqual(['audit', 'pricing']);
  });

  it('sends each event as one structured-mode CloudEvent, which a plain subscriber of the broker can read', async () => {
    const ticker = emitterContract();
    const { fast, service } = await setup();
    const raw: Delivery[] = [];
    const observer = await fast.subscribe({ topic: `${ticker.name}.events`, group: 'raw-observer' }, async (delivery) => {
      raw.push(delivery);
    });
    const emitter = service(ticker.name);
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    // The first send of a type takes the full path, the next ones the one-pass build: both must read the same.
    const sent = [
      await emitter.emit(ticker, 'price.changed', { symbol: 'ACME', price: 42.5 }, { subject: 'ACME' }),
      await emitter.emit(ticker, 'price.changed', { symbol: 'ACME', price: 43 }),
      await emitter.emit(ticker, 'price.changed', { symbol: 'ACME', price: 44 }, { traceparent: parent }),
    ];
    await waitFor(() => raw.length >= 3, 'the plain subscriber to see every event');
    await observer.close();
    for (const [i, seen] of raw.entries()) {
      expect(seen.id).toBe(sent[i]?.messageId);
      expect(Object.keys(seen.headers)).toEqual(['content-type']);
      const envelope = decodeStructured(seen.body, seen.headers['content-type']);
      expect(envelope).toMatchObject({
        specversion: '1.0',
        id: sent[i]?.messageId,
        source: ticker.name,
        type: `${ticker.name}.price.changed`,
        datacontenttype: 'application/json',
        data: { symbol: 'ACME', price: [42.5, 43, 44][i] },
      });
      expect(Date.parse(envelope.time ?? '')).not.toBeNaN();
      expect(envelope.extensions?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
    }
    expect(decodeStructured(raw[0]!.body).subject).toBe('ACME');
    expect(decodeStructured(raw[2]!.body).extensions?.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-/);
  });

  it('balances within a service and fans out across services; emitBatch splits the two paths', async () => {
    const ticker = emitterContract();
    const { received, service } = await setup();
    const handle = (name: string) => (data: unknown, ctx: { type: string; messageId: string; attempt: number }) => {
      received.push({ service: name, type: ctx.type, data, messageId: ctx.messageId, attempt: ctx.attempt });
    };
    const instances = [
      service('pricing').on(ticker, '*', handle('pricing#1')),
      service('pricing').on(ticker, '*', handle('pricing#2')),
      service('audit').on(ticker, '*', handle('audit')),
    ];
    for (const instance of instances) await instance.start();
    const emitter = service(ticker.name);
    const batch = [
      ...Array.from({ length: 30 }, (_, i) => ({ name: 'price.changed' as const, data: { symbol: `S${i}`, price: i } })),
      { name: 'order.placed' as const, data: { id: 'o-2' } },
    ];
    const sent = await emitter.emitBatch(ticker, batch);
    expect(sent).toHaveLength(31);
    await waitFor(() => received.length >= 62, `every event to both services (have ${received.length})`);
    await delay(150);
    const pricing = received.filter((r) => r.service.startsWith('pricing'));
    const audit = received.filter((r) => r.service === 'audit');
    expect(new Set(pricing.map((r) => r.messageId))).toEqual(new Set(sent.map((s) => s.messageId)));
    expect(pricing).toHaveLength(31);
    expect(audit).toHaveLength(31);
    expect(new Set(pricing.map((r) => r.service))).toEqual(new Set(['pricing#1', 'pricing#2']));
  });

  it('refuses an at-least-once broker as the at-most-once transport', () => {
    const error = (() => {
      try {
        createMessaging({ broker: createMemoryBroker(), atMostOnce: { broker: createMemoryBroker() }, service: 's', deadLetters: false });
      } catch (e) {
        return e;
      }
    })();
    expect(isSwitchboardError(error, 'SB_CONFIG_INVALID')).toBe(true);
  });
});
