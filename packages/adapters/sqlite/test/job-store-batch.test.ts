import { newSecretId } from '@switchboard/core/kit';
import { describe, expect, it } from 'vitest';
import type { ItemOutcome } from '../src/job-store-batch.js';
import { TickBatch } from '../src/job-store-batch.js';

function recordingBatch(eager: boolean) {
  const flushes: number[][] = [];
  const batch = new TickBatch<number, number>(
    (items): ItemOutcome<number>[] => {
      flushes.push([...items]);
      return items.map((item) => (item < 0 ? { ok: false, error: new Error(`bad ${item}`) } : { ok: true, value: item * 10 }));
    },
    { eager },
  );
  return { batch, flushes };
}

describe('TickBatch', () => {
  it('collects the items of a turn into one flush on setImmediate', async () => {
    const { batch, flushes } = recordingBatch(false);
    const answers = Promise.all([batch.add(1), batch.add(2)]);
    expect(flushes).toEqual([]);
    expect(await answers).toEqual([10, 20]);
    expect(flushes).toEqual([[1, 2]]);
  });

  it('eager: flushes a lone item at once, without waiting for the next turn', async () => {
    const { batch, flushes } = recordingBatch(true);
    const answer = batch.add(1);
    expect(flushes).toEqual([[1]]);
    expect(await answer).toBe(10);
  });

  it('eager: collects the later items of a turn into one flush, each with its own outcome', async () => {
    const { batch, flushes } = recordingBatch(true);
    const answers = Promise.allSettled([batch.add(1), batch.add(2), batch.add(-3), batch.add(4)]);
    expect(flushes).toEqual([[1]]);
    const settled = await answers;
    expect(flushes).toEqual([[1], [2, -3, 4]]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual([10, 20, 'bad -3', 40]);
    // The next turn starts afresh: its first item is flushed at once again.
    const next = batch.add(5);
    expect(flushes).toHaveLength(3);
    expect(await next).toBe(50);
  });

  it('rejects every item of a flush that throws', async () => {
    const batch = new TickBatch<number, number>(() => {
      throw new Error('transaction failed');
    });
    const settled = await Promise.allSettled([batch.add(1), batch.add(2)]);
    expect(settled.map((s) => s.status === 'rejected' && (s.reason as Error).message)).toEqual([
      'transaction failed',
      'transaction failed',
    ]);
  });
});

describe('newSecretId', () => {
  it('answers 128 bits in base64url, never the same twice across pool refills', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1_000; i++) {
      const id = newSecretId();
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
      ids.add(id);
    }
    expect(ids.size).toBe(1_000);
  });
});
