import { Coalescer } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';

describe('Coalescer', () => {
  it('writes what is pushed in one tick as one batch, and keeps collecting while a batch is written', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const coalescer = new Coalescer<number, number>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items.map((i) => i * 10);
    });
    const first = [1, 2, 3].map((i) => coalescer.push(i));
    await Promise.resolve();
    const second = [4, 5].map((i) => coalescer.push(i));
    await new Promise((resolve) => setImmediate(resolve));
    const third = coalescer.push(6);
    release();
    expect(await Promise.all([...first, ...second, third])).toEqual([10, 20, 30, 40, 50, 60]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  it('rejects every item of a failed batch and goes on with the next', async () => {
    let fail = true;
    const coalescer = new Coalescer<string, string>(async (items) => {
      if (fail) throw new Error('store down');
      return items;
    });
    const failed = [coalescer.push('a'), coalescer.push('b')];
    await expect(Promise.all(failed)).rejects.toThrow('store down');
    fail = false;
    expect(await coalescer.push('c')).toBe('c');
    await coalescer.drain();
  });
});
