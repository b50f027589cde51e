import { newMessageId, type ReceiptStore } from '@switchboard/core';
import { createMemoryReceiptStore } from '@switchboard/memory';
import { describe, expect, it } from 'vitest';
import { inbox } from '../src/middleware/inbox.js';
import { inbound } from './unit-helpers.js';

function counting(store: ReceiptStore): { store: ReceiptStore; calls: { claimBatch: number; record: number } } {
  const calls = { claimBatch: 0, record: 0 };
  return {
    calls,
    store: Object.assign(Object.create(store) as ReceiptStore, {
      claimBatch: (requests: Parameters<ReceiptStore['claimBatch']>[0]) => {
        calls.claimBatch++;
        return store.claimBatch(requests);
      },
      record: (updates: Parameters<ReceiptStore['record']>[0]) => {
        calls.record++;
        return store.record(updates);
      },
    }),
  };
}

describe('inbox middleware', () => {
  it('coalesces claims and records of one tick into one store call each, and runs a duplicate once', async () => {
    const memory = createMemoryReceiptStore();
    const { store, calls } = counting(memory);
    let runs = 0;
    const step = inbox({ store, dedupe: true, owner: 'w1', leaseMs: 1000 })(async () => {
      runs++;
      return { kind: 'ack', result: '"done"' };
    });
    const ids = Array.from({ length: 50 }, () => newMessageId());
    const outcomes = await Promise.all(ids.map((id) => step(inbound({}, { id }))));
    expect(outcomes.every((o) => o.kind === 'ack')).toBe(true);
    expect(calls).toEqual({ claimBatch: 1, record: 1 });
    expect(runs).toBe(50);
    expect(await memory.get({ group: 'service-b', source: 'service-a', messageId: ids[0]! })).toMatchObject({
      state: 'processed',
      result: '"done"',
      type: 'service-b.name.submitted',
      source: 'service-a',
    });
    expect(await step(inbound({}, { id: ids[0]!, attempt: 2 }))).toEqual({ kind: 'ack', skipped: 'duplicate' });
    expect(runs).toBe(50);
  });

  it('records failed and dead-lettered outcomes with the run number, and defers a message another worker holds', async () => {
    const store = createMemoryReceiptStore();
    const problem = { type: 'urn:x', title: 'x', status: 500, code: 'SB_HANDLER_FAILED' };
    const failing = inbox({ store, dedupe: true, owner: 'w1', leaseMs: 1000 })(async () => ({
      kind: 'retry',
      delayMs: 5,
      error: problem,
      counted: true,
    }));
    const id = newMessageId();
    await failing(inbound({}, { id }));
    expect(await store.get({ group: 'service-b', source: 'service-a', messageId: id })).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: problem,
    });
    await store.claim({ group: 'service-b', source: 'service-a', messageId: id, owner: 'other', leaseMs: 10_000 });
    expect(await failing(inbound({}, { id, attempt: 2 }))).toMatchObject({ kind: 'retry', counted: false });
    const dead = inbox({ store, dedupe: true, owner: 'w1', leaseMs: 1000 })(async () => ({
      kind: 'dead-letter',
      reason: 'permanent',
      error: problem,
    }));
    const other = newMessageId();
    await dead(inbound({}, { id: other }));
    expect(await store.get({ group: 'service-b', source: 'service-a', messageId: other })).toMatchObject({
      state: 'dead-lettered',
      attempts: 1,
    });
    expect(await dead(inbound({}, { id: other, attempt: 2 }))).toEqual({ kind: 'ack', skipped: 'dead-lettered' });
  });
});
