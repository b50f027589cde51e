import { createCloudEvent, encodeBinary, newMessageId, PermanentError, RetryLaterError } from '@switchboard/core';
import { messagesTopic } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { engines, serviceB, until } from './harness.js';

describe.each(engines)('reliability on %s', (_name, factory) => {
  it('retries a failing handler with backoff, then dead-letters it with the attempt history', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const attempts: number[] = [];
      b.handle(serviceB, 'name.submitted', (_data, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error(`boom ${ctx.attempt}`);
      });
      await b.start();
      const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'x' });
      const receipt = await b.receipts.wait(messageId);
      expect(attempts).toEqual([1, 2, 3]);
      expect(receipt?.groups[0]).toMatchObject({ state: 'dead-lettered', attempts: 3, error: { detail: 'boom 3' } });
      const page = await b.deadLetters.list({ messageId });
      expect(page.items).toHaveLength(1);
      expect(page.items[0]).toMatchObject({
        reason: 'max-attempts',
        group: 'service-b',
        topic: 'service-b.messages',
        type: 'service-b.name.submitted',
      });
      expect(page.items[0]!.attempts.map((x) => [x.attempt, x.error.detail])).toEqual([
        [1, 'boom 1'],
        [2, 'boom 2'],
        [3, 'boom 3'],
      ]);
    } finally {
      await engine.close();
    }
  });

  it('dead-letters a PermanentError at once, and honours RetryLaterError', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const runs = new Map<string, number>();
      b.handle(serviceB, 'name.submitted', (data, ctx) => {
        runs.set(data.name, (runs.get(data.name) ?? 0) + 1);
        if (data.name === 'permanent') throw new PermanentError('cannot ever work');
        if (ctx.attempt === 1) throw new RetryLaterError('not yet', 10);
      });
      await b.start();
      const permanent = await a.send(serviceB, 'name.submitted', { name: 'permanent' });
      const later = await a.send(serviceB, 'name.submitted', { name: 'later' });
      expect((await b.receipts.wait(permanent.messageId))?.groups[0]).toMatchObject({
        state: 'dead-lettered',
        attempts: 1,
        error: { code: 'SB_PERMANENT', detail: 'cannot ever work' },
      });
      expect((await b.receipts.wait(later.messageId))?.groups[0]).toMatchObject({ state: 'processed', attempts: 2 });
      expect(runs.get('permanent')).toBe(1);
      expect(runs.get('later')).toBe(2);
      const entries = (await b.deadLetters.list()).items;
      expect(entries.map((e) => [e.messageId, e.reason, e.attempts.length])).toEqual([[permanent.messageId, 'permanent', 1]]);
    } finally {
      await engine.close();
    }
  });

  it('dead-letters schema-invalid data at once with the field errors, never running the handler', async () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      let calls = 0;
      b.handle(serviceB, 'name.submitted', () => {
        calls++;
      });
      await b.start();
      // A sender that skipped validation (another language, an older version).
      const event = createCloudEvent({ type: 'service-b.name.submitted', source: 'rogue', data: { name: 42 } });
      const encoded = encodeBinary(event, engine.broker.binding);
      await engine.broker.publish({ id: event.id, topic: messagesTopic(serviceB), ...encoded });
      const receipt = await b.receipts.wait(event.id);
      expect(receipt?.groups[0]).toMatchObject({ state: 'dead-lettered', attempts: 1, error: { code: 'SB_MESSAGE_INVALID' } });
      const [entry] = (await b.deadLetters.list({ messageId: event.id })).items;
      expect(entry).toMatchObject({ reason: 'invalid' });
      expect(entry!.attempts).toHaveLength(1);
      expect(entry!.attempts[0]!.error.errors).toEqual([expect.objectContaining({ pointer: '/name' })]);
      expect(calls).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it('dead-letters an unknown type and non-CloudEvents bytes (keeping the raw bytes)', async () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      b.handle(serviceB, 'name.submitted', () => {});
      await b.start();
      const unknown = createCloudEvent({ type: 'service-b.no.such.thing', source: 'rogue', data: {} });
      await engine.broker.publish({
        id: unknown.id,
        topic: messagesTopic(serviceB),
        ...encodeBinary(unknown, engine.broker.binding),
      });
      const rawId = newMessageId();
      const raw = new Uint8Array([0xff, 0x00, 0x10, 0x80, 0x7b]);
      await engine.broker.publish({ id: rawId, topic: messagesTopic(serviceB), headers: { 'x-legacy': 'yes' }, body: raw });
      await until(async () => (await b.deadLetters.list()).items.length === 2, 'two dead letters');
      const [unknownEntry] = (await b.deadLetters.list({ messageId: unknown.id })).items;
      expect(unknownEntry).toMatchObject({ reason: 'unknown-type', type: 'service-b.no.such.thing' });
      const [rawSummary] = (await b.deadLetters.list({ messageId: rawId })).items;
      // Unreadable bytes have no CloudEvent identity: filed under the transport id, source ''.
      expect(rawSummary).toMatchObject({ reason: 'not-cloudevent', source: '' });
      const rawEntry = await b.deadLetters.get(rawSummary!.id);
      expect(Buffer.from(rawEntry!.body)).toEqual(Buffer.from(raw));
      expect(rawEntry!.headers).toEqual({ 'x-legacy': 'yes' });
      // A receipt needs an identity: the unknown type has one (source + id), the raw bytes none.
      expect((await b.receipts.get(unknown.id, { source: 'rogue' }))?.groups[0]?.state).toBe('dead-lettered');
      expect(await b.receipts.get(rawId)).toBeUndefined();
    } finally {
      await engine.close();
    }
  });

  it('times out a hanging handler: its signal aborts and the message is redelivered', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b', handlerTimeoutMs: 50 });
      const signals: AbortSignal[] = [];
      b.handle(serviceB, 'name.submitted', (_data, ctx) => {
        signals.push(ctx.signal);
        if (ctx.attempt === 1) return new Promise(() => {});
        return 'second run';
      });
      await b.start();
      const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'slow' });
      const receipt = await b.receipts.wait(messageId);
      expect(receipt?.groups[0]).toMatchObject({ state: 'processed', attempts: 2, result: '"second run"' });
      expect(signals[0]!.aborted).toBe(true);
      expect(signals[0]!.reason).toMatchObject({ code: 'SB_HANDLER_TIMEOUT' });
      expect(signals[1]!.aborted).toBe(false);
    } finally {
      await engine.close();
    }
  });

  it('runs the side effect once when the same MessageId is delivered twice (inbox)', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      let effects = 0;
      b.handle(serviceB, 'name.submitted', () => {
        effects++;
      });
      await b.start();
      const id = newMessageId();
      await a.send(serviceB, 'name.submitted', { name: 'once' }, { id });
      await b.receipts.wait(id);
      await a.send(serviceB, 'name.submitted', { name: 'once' }, { id });
      const marker = await a.send(serviceB, 'name.submitted', { name: 'marker' });
      await b.receipts.wait(marker.messageId);
      // Marker processed after the duplicate was delivered (same topic, same group, in order).
      await until(async () => effects === 2, 'the marker');
      expect(effects).toBe(2);
      expect((await b.receipts.get(id))?.groups[0]).toMatchObject({ state: 'processed', attempts: 1 });
    } finally {
      await engine.close();
    }
  });

  it('without the inbox (transport path) a duplicate runs again', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b', inbox: false });
      let effects = 0;
      b.handle(serviceB, 'name.submitted', () => {
        effects++;
      });
      await b.start();
      const id = newMessageId();
      await a.send(serviceB, 'name.submitted', { name: 'twice' }, { id });
      await a.send(serviceB, 'name.submitted', { name: 'twice' }, { id });
      await until(() => effects === 2, 'both deliveries to run');
      expect(effects).toBe(2);
    } finally {
      await engine.close();
    }
  });

  it('replays dead letters byte for byte: one by id, by filter, then all', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      let healthy = false;
      const handled: string[] = [];
      b.handle(serviceB, 'name.submitted', (data) => {
        if (!healthy) throw new PermanentError('downstream rejected it');
        handled.push(data.name);
      });
      b.handle(serviceB, 'picture.submitted', (data) => {
        if (!healthy) throw new PermanentError('downstream rejected it');
        handled.push(data.title);
      });
      await b.start();
      const sent = [
        await a.send(serviceB, 'name.submitted', { name: 'one' }),
        await a.send(serviceB, 'name.submitted', { name: 'two' }),
        await a.send(serviceB, 'picture.submitted', { title: 'three' }),
        await a.send(serviceB, 'picture.submitted', { title: 'four' }),
      ];
      for (const s of sent) await b.receipts.wait(s.messageId);
      const entries = (await b.deadLetters.list()).items;
      expect(entries).toHaveLength(4);
      healthy = true;

      const first = entries.find((e) => e.messageId === sent[0]!.messageId)!;
      const single = await b.replay({ id: first.id });
      expect(single).toMatchObject({ replayed: 1, messageIds: [sent[0]!.messageId] });
      expect((await b.receipts.wait(sent[0]!.messageId))?.groups[0]).toMatchObject({ state: 'processed', attempts: 2 });

      const byType = await b.replay({ type: 'service-b.picture.submitted' });
      expect([...byType.messageIds].sort()).toEqual([sent[2]!.messageId, sent[3]!.messageId].sort());
      for (const s of sent.slice(2)) expect((await b.receipts.wait(s.messageId))?.groups[0]?.state).toBe('processed');

      const rest = await b.deadLetters.replay({ all: true });
      expect(rest.messageIds).toEqual([sent[1]!.messageId]);
      await b.receipts.wait(sent[1]!.messageId);
      expect(handled.sort()).toEqual(['four', 'one', 'three', 'two']);
      expect((await b.deadLetters.list({ status: 'pending' })).items).toHaveLength(0);
      expect((await b.deadLetters.list({ status: 'replayed' })).items).toHaveLength(4);
      await expect(b.replay({ id: first.id })).rejects.toMatchObject({ code: 'SB_NOT_FOUND' });
    } finally {
      await engine.close();
    }
  });
});
