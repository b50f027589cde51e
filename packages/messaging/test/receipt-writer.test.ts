import { newMessageId, type ReceiptStore } from '@switchboard/core';
import { createMemoryReceiptStore } from '@switchboard/memory';
import { describe, expect, it } from 'vitest';
import { ReceiptWriter } from '../src/receipt-writer.js';

type Call = [method: 'claimBatch' | 'record' | 'recordAndClaim', ...sizes: number[]];

/** A memory store that logs its batched calls; without `recordAndClaim` when `combined` is false. */
function logging(combined: boolean): { store: ReceiptStore; calls: Call[] } {
  const memory = createMemoryReceiptStore();
  const calls: Call[] = [];
  const store: ReceiptStore = Object.assign(Object.create(memory) as ReceiptStore, {
    claimBatch: (requests: Parameters<ReceiptStore['claimBatch']>[0]) => {
      calls.push(['claimBatch', requests.length]);
      return memory.claimBatch(requests);
    },
    record: (updates: Parameters<ReceiptStore['record']>[0]) => {
      calls.push(['record', updates.length]);
      return memory.record(updates);
    },
    recordAndClaim: combined
      ? (updates: Parameters<ReceiptStore['record']>[0], requests: Parameters<ReceiptStore['claimBatch']>[0]) => {
          calls.push(['recordAndClaim', updates.length, requests.length]);
          return memory.recordAndClaim(updates, requests);
        }
      : undefined,
  });
  return { store, calls };
}

const claim = (messageId: string) => ({ group: 'g', source: '/s', messageId, owner: 'w', leaseMs: 1000 });
const processed = (messageId: string) => ({ group: 'g', source: '/s', messageId, state: 'processed' as const, attempt: 1 });

describe('ReceiptWriter', () => {
  it('writes the processed marks of one batch with the claims of the next, in one call', async () => {
    const { store, calls } = logging(true);
    const writer = new ReceiptWriter(store);
    const first = [newMessageId(), newMessageId()];
    expect((await Promise.all(first.map((id) => writer.claim(claim(id))))).map((r) => r.outcome)).toEqual(['claimed', 'claimed']);
    const marks = first.map((id) => writer.record(processed(id)));
    const second = [newMessageId(), first[0]!];
    const claims = await Promise.all(second.map((id) => writer.claim(claim(id))));
    // The duplicate of first[0] sees its processed mark: updates go before claims.
    expect(claims.map((r) => r.outcome)).toEqual(['claimed', 'duplicate-processed']);
    expect(await Promise.all(marks)).toEqual(['updated', 'updated']);
    expect(calls).toEqual([
      ['claimBatch', 2],
      ['recordAndClaim', 2, 2],
    ]);
  });

  it('writes marks alone one turn later when no claim comes, and one call per kind without recordAndClaim', async () => {
    const combined = logging(true);
    const id = newMessageId();
    expect(await new ReceiptWriter(combined.store).record(processed(id))).toBe('created');
    expect(combined.calls).toEqual([['record', 1]]);

    const separate = logging(false);
    const writer = new ReceiptWriter(separate.store);
    const [mark, claimed] = await Promise.all([writer.record(processed(newMessageId())), writer.claim(claim(newMessageId()))]);
    expect([mark, claimed.outcome]).toEqual(['created', 'claimed']);
    expect(separate.calls).toEqual([
      ['record', 1],
      ['claimBatch', 1],
    ]);
  });

  it('rejects every write of a failed batch and goes on with the next', async () => {
    const memory = createMemoryReceiptStore();
    let fail = true;
    const store: ReceiptStore = Object.assign(Object.create(memory) as ReceiptStore, {
      claimBatch: (requests: Parameters<ReceiptStore['claimBatch']>[0]) =>
        fail ? Promise.reject(new Error('store down')) : memory.claimBatch(requests),
    });
    const writer = new ReceiptWriter(store);
    await expect(Promise.all([writer.claim(claim(newMessageId())), writer.claim(claim(newMessageId()))])).rejects.toThrow('store down');
    fail = false;
    expect((await writer.claim(claim(newMessageId()))).outcome).toBe('claimed');
  });

  it('fails only the items a store refuses when it refuses a batch as a whole, and writes the others', async () => {
    const { store, calls } = logging(true);
    const writer = new ReceiptWriter(store);
    const done = newMessageId();
    await writer.claim(claim(done));
    const tooLong = 'x'.repeat(600);
    const marks = [writer.record(processed(done)), writer.record(processed(tooLong))];
    const fresh = newMessageId();
    const claims = [writer.claim(claim(fresh)), writer.claim(claim(tooLong)), writer.claim(claim(done))];
    const settled = await Promise.allSettled([...marks, ...claims]);
    expect(
      settled.map((r) => (r.status === 'fulfilled' ? (typeof r.value === 'string' ? r.value : r.value.outcome) : r.reason.code)),
    ).toEqual(['updated', 'SB_STORE_REFUSED', 'claimed', 'SB_STORE_REFUSED', 'duplicate-processed']);
    expect(calls).toEqual([
      ['claimBatch', 1],
      ['recordAndClaim', 2, 3],
      ['record', 1],
      ['record', 1],
      ['claimBatch', 1],
      ['claimBatch', 1],
      ['claimBatch', 1],
    ]);
    // The neighbour of a refused item was written: its record now holds the claim.
    expect((await store.claimBatch([claim(fresh)]))[0]?.outcome).toBe('in-progress');
  });
});
