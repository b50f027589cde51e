import { cloudEventsBindings, createOutboxRelay, decodeCloudEvent, type SendMessage, subscribeTracing, tracing } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteOutbox } from '@switchboard/sqlite';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { serviceA, serviceB } from './harness.js';

describe('the transactional outbox through messaging', () => {
  it('delivers a message enqueued before its receiver ever started, once the receiver starts', async () => {
    const broker = createMemoryBroker();
    const db = new Database(':memory:');
    db.exec('CREATE TABLE names (name TEXT PRIMARY KEY)');
    const outbox = createSqliteOutbox({ database: db });
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false });
    const prepared = await Promise.all(['Ada', 'Grace', 'Edsger'].map((name) => a.prepareSend(serviceB, 'name.submitted', { name })));
    expect(prepared.map((m) => m.receiverGroup)).toEqual(['service-b', 'service-b', 'service-b']);
    const insert = db.prepare('INSERT INTO names (name) VALUES (?)');
    db.transaction(() => {
      for (const name of ['Ada', 'Grace', 'Edsger']) insert.run(name);
      outbox.enqueue(prepared);
    })();
    const relay = createOutboxRelay({ store: outbox, broker });
    expect(await relay.runOnce()).toBe(3);

    // Only now does ServiceB start for the first time: the relay declared its group, so it was kept.
    const seen: string[] = [];
    const b = createMessaging({ broker, service: 'service-b', deadLetters: createMemoryDeadLetterStore() });
    b.handle(serviceB, 'name.submitted', (data, context) => {
      seen.push(`${data.name}:${context.messageId}`);
    });
    await b.start();
    await expect.poll(() => seen.length).toBe(3);
    expect(seen).toEqual(prepared.map((m, i) => `${['Ada', 'Grace', 'Edsger'][i]}:${m.id}`));
    await Promise.all([a.close(), b.close(), outbox.close()]);
    await broker.close();
  });

  it('traces what the relay publishes on switchboard:send (kind relay), with the attributes read back from the enqueued bytes', async () => {
    const broker = createMemoryBroker();
    const db = new Database(':memory:');
    const outbox = createSqliteOutbox({ database: db });
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false });
    const prepared = await Promise.all(['Ada', 'Grace'].map((name) => a.prepareSend(serviceB, 'name.submitted', { name })));
    outbox.enqueue(prepared);
    const ended: SendMessage[] = [];
    const unsubscribe = subscribeTracing(tracing.send, { asyncEnd: (context) => ended.push(context) });
    try {
      const relay = createOutboxRelay({ store: outbox, broker });
      expect(await relay.runOnce()).toBe(2);
    } finally {
      unsubscribe();
    }
    expect(ended).toHaveLength(2);
    prepared.forEach((message, i) => {
      const event = decodeCloudEvent(message.headers, message.body, broker.binding);
      expect(ended[i]).toMatchObject({
        kind: 'relay',
        system: 'memory',
        destination: 'service-b.messages',
        messageId: message.id,
        source: 'service-a',
        type: 'service-b.name.submitted',
        traceparent: event.extensions?.traceparent,
        batchSize: 2,
        outcome: 'ok',
      });
      expect(ended[i]?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/);
    });
    await Promise.all([a.close(), outbox.close()]);
    await broker.close();
  });

  it('builds the very message send would: typed, validated and encoded by the same encoder', async () => {
    const broker = createMemoryBroker();
    const a = createMessaging({ broker, service: 'service-a', deadLetters: false });
    const message = await a.prepareSend(serviceB, 'name.submitted', { name: 'Ada' }, { subject: 'names/ada', key: 'k' });
    const event = decodeCloudEvent(message.headers, message.body, cloudEventsBindings.plain);
    expect(event).toMatchObject({
      id: message.id,
      source: 'service-a',
      type: 'service-b.name.submitted',
      subject: 'names/ada',
      data: { name: 'Ada' },
    });
    expect(message).toMatchObject({ topic: 'service-b.messages', key: 'k', receiverGroup: 'service-b' });
    // @ts-expect-error name must be a non-empty string, as the contract says
    await expect(a.prepareSend(serviceB, 'name.submitted', { name: 1 })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
    const emitted = await a.prepareEmit(serviceA, 'picture.resized', { width: 3 });
    expect(emitted.receiverGroup).toBeUndefined();
    expect(decodeCloudEvent(emitted.headers, emitted.body, cloudEventsBindings.plain).type).toBe('service-a.picture.resized');
    const invoked = await a.prepareInvoke(serviceB, 'save', { name: 'Ada' });
    expect(invoked).toMatchObject({ topic: 'service-b.messages', receiverGroup: 'service-b' });
    await a.close();
    await broker.close();
  });
});
