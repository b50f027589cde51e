import { newMessageId } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { engines, serviceA, serviceB, until } from './harness.js';

describe.each(engines)('messaging on %s', (_name, factory) => {
  it('sends a typed message that the owning service handles, with the CloudEvents context', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const seen: {
        data: unknown;
        type: string;
        source: string;
        subject?: string;
        traceparent?: string;
        attempt: number;
        messageId: string;
      }[] = [];
      b.handle(serviceB, 'name.submitted', (data, ctx) => {
        seen.push({
          data,
          type: ctx.type,
          source: ctx.source,
          subject: ctx.subject,
          traceparent: ctx.traceparent,
          attempt: ctx.attempt,
          messageId: ctx.messageId,
        });
      });
      await b.start();
      const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const sent = await a.send(serviceB, 'name.submitted', { name: 'Ada' }, { subject: 'ada', traceparent: parent });
      await until(() => seen.length === 1, 'the handler');
      expect(seen[0]).toMatchObject({
        data: { name: 'Ada' },
        type: 'service-b.name.submitted',
        source: 'service-a',
        subject: 'ada',
        attempt: 1,
        messageId: sent.messageId,
      });
      expect(seen[0]!.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      expect(seen[0]!.traceparent).not.toBe(parent);
      const receipt = await b.receipts.wait(sent.messageId, { source: 'service-a' });
      expect(receipt?.source).toBe('service-a');
      expect(receipt?.groups).toEqual([expect.objectContaining({ group: 'service-b', state: 'processed', attempts: 1 })]);
    } finally {
      await engine.close();
    }
  });

  it('validates before publishing: invalid data is refused with field errors and nothing is sent', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      let calls = 0;
      b.handle(serviceB, 'name.submitted', () => {
        calls++;
      });
      await b.start();
      await expect(a.send(serviceB, 'name.submitted', { name: '' })).rejects.toMatchObject({
        code: 'SB_VALIDATION',
        errors: [expect.objectContaining({ pointer: '/name' })],
      });
      const ok = await a.send(serviceB, 'name.submitted', { name: 'x' });
      await b.receipts.wait(ok.messageId);
      expect(calls).toBe(1);
    } finally {
      await engine.close();
    }
  });

  it('keeps messages sent before the receiver first subscribed (its group is declared by the sender)', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const sent = await a.send(serviceB, 'name.submitted', { name: 'early' });
      const b = engine.messaging({ service: 'service-b' });
      const names: string[] = [];
      b.handle(serviceB, 'name.submitted', (data) => {
        names.push(data.name);
      });
      await b.start();
      await until(() => names.length === 1, 'the early message');
      expect(names).toEqual(['early']);
      expect((await b.receipts.wait(sent.messageId))?.groups[0]?.state).toBe('processed');
    } finally {
      await engine.close();
    }
  });

  it('invokes an operation by message with the same Handlers object; result and declared error land in the receipt', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const contexts: { via: string; operation: string; messageId?: string }[] = [];
      const handlers = {
        save: (input: { name: string }, ctx: { via: string; operation: string; messageId?: string }) => {
          contexts.push({ via: ctx.via, operation: ctx.operation, messageId: ctx.messageId });
          if (input.name === 'taken') throw new (class extends Error {})('x');
          return { id: `id-${input.name}` };
        },
      };
      const { OperationError } = await import('@switchboard/core');
      b.serve(serviceB, {
        save: (input, ctx) => {
          if (input.name === 'taken') throw new OperationError('NameTaken', { detail: 'already there' });
          return handlers.save(input, ctx);
        },
      });
      await b.start();
      const ok = await a.invoke(serviceB, 'save', { name: 'ada' });
      const taken = await a.invoke(serviceB, 'save', { name: 'taken' });
      const okReceipt = await b.receipts.wait(ok.messageId);
      expect(okReceipt?.groups[0]).toMatchObject({ state: 'processed', type: 'service-b.op.save' });
      expect(JSON.parse(okReceipt!.groups[0]!.result!)).toEqual({ id: 'id-ada' });
      expect(contexts[0]).toEqual({ via: 'message', operation: 'save', messageId: ok.messageId });
      const takenReceipt = await b.receipts.wait(taken.messageId);
      expect(takenReceipt?.groups[0]).toMatchObject({
        state: 'dead-lettered',
        attempts: 1,
        error: { code: 'NameTaken', status: 409, type: 'urn:switchboard:service-b:error:NameTaken', detail: 'already there' },
      });
    } finally {
      await engine.close();
    }
  });

  it('emits a payload-free event: every service gets a copy, instances of one service share them', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      // One delivery in flight per instance, and a handler that yields: both instances get a share.
      const b1 = engine.messaging({ service: 'service-b', maxInFlight: 1 });
      const b2 = engine.messaging({ service: 'service-b', maxInFlight: 1 });
      const c = engine.messaging({ service: 'service-c' });
      const pause = () => new Promise((resolve) => setTimeout(resolve, 1));
      const got = { b1: [] as string[], b2: [] as string[], c: [] as string[] };
      b1.on(serviceA, 'name.processed', async (data, ctx) => {
        expect(data).toBeUndefined();
        got.b1.push(ctx.messageId);
        await pause();
      });
      b2.on(serviceA, 'name.processed', async (_data, ctx) => {
        got.b2.push(ctx.messageId);
        await pause();
      });
      c.on(serviceA, 'name.processed', (_data, ctx) => {
        got.c.push(ctx.messageId);
      });
      await Promise.all([b1.start(), b2.start(), c.start()]);
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await a.emit(serviceA, 'name.processed')).messageId);
      await until(() => got.c.length === 40 && got.b1.length + got.b2.length === 40, 'every copy');
      expect(new Set(got.c)).toEqual(new Set(ids));
      expect(new Set([...got.b1, ...got.b2])).toEqual(new Set(ids));
      expect(got.b1.length).toBeGreaterThan(0);
      expect(got.b2.length).toBeGreaterThan(0);
      const receipt = await b1.receipts.wait(ids[0]!);
      expect(receipt?.groups.map((g) => g.group).sort()).toEqual(['service-b', 'service-c']);
    } finally {
      await engine.close();
    }
  });

  it('routes by wildcard, exact registrations winning, and validates event data', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const wild: string[] = [];
      const exact: unknown[] = [];
      b.on(serviceA, 'picture.*', (_data, ctx) => {
        wild.push(ctx.type);
      });
      b.on(serviceA, 'picture.resized', (data) => {
        exact.push(data);
      });
      b.on(serviceA, '*', (_data, ctx) => {
        wild.push(`all:${ctx.type}`);
      });
      await b.start();
      const e1 = await a.emit(serviceA, 'picture.resized', { width: 640 });
      const e2 = await a.emit(serviceA, 'name.processed');
      const e3 = await a.emit(serviceA, 'picture.processed', undefined, {
        attachment: Buffer.from('png bytes'),
        attachmentType: 'image/png',
      });
      for (const id of [e1, e2, e3]) await b.receipts.wait(id.messageId);
      expect(exact).toEqual([{ width: 640 }]);
      expect(wild.sort()).toEqual(['all:service-a.name.processed', 'service-a.picture.processed']);
      await expect(a.emit(serviceA, 'name.processed', undefined, { attachment: Buffer.from('x') })).rejects.toMatchObject({
        code: 'SB_VALIDATION',
      });
    } finally {
      await engine.close();
    }
  });

  it('publishes batches pipelined and handles every message', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const names = new Set<string>();
      b.handle(serviceB, 'name.submitted', (data) => {
        names.add(data.name);
      });
      await b.start();
      const sent = await a.sendBatch(
        serviceB,
        Array.from({ length: 300 }, (_, i) => ({ name: 'name.submitted' as const, data: { name: `n${i}` } })),
      );
      expect(new Set(sent.map((s) => s.messageId)).size).toBe(300);
      const events = await a.emitBatch(serviceA, [{ name: 'name.processed' }, { name: 'picture.resized', data: { width: 1 } }]);
      expect(events).toHaveLength(2);
      await until(() => names.size === 300, 'all 300 messages');
      // The processed mark is written after the handler returned (and before the ack): wait for it.
      const receipt = await b.receipts.wait(sent[299]!.messageId);
      expect(receipt?.groups[0]?.state).toBe('processed');
      expect(await b.receipts.get(newMessageId())).toBeUndefined();
    } finally {
      await engine.close();
    }
  });
});
