import type { Broker, ReceiptStore } from '@switchboard/core';
import { CLOUDEVENT_ID_MAX_BYTES, createCloudEvent, encodeCloudEvent, SwitchboardError } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, messagesTopic } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { engines, serviceB, until } from './harness.js';

describe('an at-most-once engine as the main broker', () => {
  it('is refused at start, with an error that names the at-most-once option', () => {
    const memory = createMemoryBroker();
    const atMostOnce: Broker = Object.assign(Object.create(memory) as Broker, {
      name: 'fire-and-forget',
      capabilities: { ...memory.capabilities, delivery: 'at-most-once' as const },
    });
    let error: unknown;
    try {
      createMessaging({ broker: atMostOnce, service: 'service-a', deadLetters: false });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SwitchboardError);
    expect(error).toMatchObject({ code: 'SB_CONFIG_INVALID' });
    expect((error as SwitchboardError).detail).toContain('atMostOnce');
    // Where it belongs, it is taken.
    expect(() =>
      createMessaging({ broker: memory, service: 'service-a', deadLetters: false, atMostOnce: { broker: atMostOnce } }),
    ).not.toThrow();
  });
});

describe.each(engines)('identity is source + id, on %s', (_name, factory) => {
  it('handles two events with one id from two sources, each once, with a receipt each', async () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      const seen: string[] = [];
      b.handle(serviceB, 'name.submitted', (data, context) => {
        seen.push(`${context.source}:${data.name}`);
      });
      await b.start();
      const id = 'order-42';
      for (const source of ['shop-eu', 'shop-us', 'shop-eu']) {
        const event = createCloudEvent({ id, source, type: 'service-b.name.submitted', data: { name: source } });
        await engine.broker.publish({ id, topic: messagesTopic(serviceB), ...encodeCloudEvent(event, engine.broker.binding) });
      }
      await until(() => seen.length >= 2, 'both sources handled');
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The repeat from shop-eu is a duplicate; shop-us's event with the same id is not.
      expect(seen.sort()).toEqual(['shop-eu:shop-eu', 'shop-us:shop-us']);
      const all = await engine.receipts.getAll(id);
      expect(all.map((r) => [r.source, r.state]).sort()).toEqual([
        ['shop-eu', 'processed'],
        ['shop-us', 'processed'],
      ]);
    } finally {
      await engine.close();
    }
  });

  it('dead-letters an event whose id is over the limit at once (never an endless retry), keeping its bytes', async () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      let runs = 0;
      b.handle(serviceB, 'name.submitted', () => {
        runs++;
      });
      await b.start();
      const id = 'x'.repeat(CLOUDEVENT_ID_MAX_BYTES + 1);
      const event = createCloudEvent({ id, source: 'shop', type: 'service-b.name.submitted', data: { name: 'long' } });
      const encoded = encodeCloudEvent(event, engine.broker.binding);
      await engine.broker.publish({ id: 'transport-1', topic: messagesTopic(serviceB), ...encoded });
      await until(async () => (await engine.deadLetters.list({})).items.length === 1, 'the dead letter');
      const [entry] = (await engine.deadLetters.list({})).items;
      expect(entry).toMatchObject({ reason: 'invalid', messageId: 'transport-1', source: '', group: 'service-b' });
      expect(runs).toBe(0);
      const full = await engine.deadLetters.get(entry!.id);
      expect(Buffer.from(full!.body).equals(Buffer.from(encoded.body))).toBe(true);
    } finally {
      await engine.close();
    }
  });
});

describe('a permanent store error', () => {
  it('is a dead letter with reason store, acknowledged once, never retried', async () => {
    const broker = createMemoryBroker();
    const memory = createMemoryReceiptStore();
    let claims = 0;
    const refusing: ReceiptStore = Object.assign(Object.create(memory) as ReceiptStore, {
      claimBatch: async () => {
        claims++;
        throw new SwitchboardError('SB_STORE_REFUSED', { detail: 'value too long for type character varying(64)' });
      },
      recordAndClaim: undefined,
    });
    const deadLetters = createMemoryDeadLetterStore();
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false });
    const b = createMessaging({ broker, service: 'service-b', receipts: refusing, deadLetters });
    let runs = 0;
    b.handle(serviceB, 'name.submitted', () => {
      runs++;
    });
    await b.start();
    const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'Ada' });
    await until(async () => (await deadLetters.list({ messageId })).items.length === 1, 'the dead letter');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const [entry] = (await deadLetters.list({ messageId })).items;
    expect(entry).toMatchObject({ reason: 'store', source: 'service-a', type: 'service-b.name.submitted' });
    expect(claims).toBe(1);
    expect(runs).toBe(0);
    await Promise.all([a.close(), b.close()]);
    await broker.close();
  });
});

describe('a broker without a CloudEvents binding', () => {
  it('is refused at start instead of failing every message', () => {
    const memory = createMemoryBroker();
    const { binding: _binding, ...rest } = memory;
    const wrapper = {
      ...rest,
      name: 'wrapper',
      capabilities: memory.capabilities,
      publish: memory.publish.bind(memory),
    } as unknown as Broker;
    expect(() => createMessaging({ broker: wrapper, service: 'service-a', deadLetters: false })).toThrow(/declares no CloudEvents binding/);
  });
});
