import { createTestbed, FAKE_TIMERS, type Testbed } from '@switchboard/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { shop, shopHandlers } from './fixtures.js';

/** A stock handler that fails its first `failures` runs. */
function flaky(failures: number) {
  const runs: number[] = [];
  return {
    runs,
    consumes: (m: import('@switchboard/messaging').Messaging) =>
      m.handle(shop, 'stock.count', () => {
        runs.push(Date.now());
        if (runs.length <= failures) throw new Error(`run ${runs.length} fails`);
        return { counted: true };
      }),
  };
}

describe('time, driven by fake timers', () => {
  let bed: Testbed | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: [...FAKE_TIMERS] });
  });
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
    vi.useRealTimers();
  });

  it('lets the backoff between retries pass while awaiting the receipt', async () => {
    const stock = flaky(2);
    bed = await createTestbed({
      timers: vi,
      services: {
        shop: {
          consumes: stock.consumes,
          messaging: { retry: { maxAttempts: 5, backoff: { baseMs: 60_000, maxMs: 600_000, jitter: 'none' } } },
        },
      },
    });
    const { messageId } = await bed.messaging().send(shop, 'stock.count', { sku: 'tea', count: 3 });
    const receipt = await bed.receipt(messageId);
    expect(receipt.groups).toMatchObject([{ group: 'shop', state: 'processed', attempts: 3 }]);
    // The second run came a minute after the first, the third two minutes after that: of virtual time.
    const [first = 0, second = 0, third = 0] = stock.runs;
    expect(second - first).toBeGreaterThanOrEqual(60_000);
    expect(third - second).toBeGreaterThanOrEqual(120_000);
  });

  it('dead-letters after the last attempt, with the history of every failure', async () => {
    const stock = flaky(10);
    bed = await createTestbed({
      timers: vi,
      messaging: { retry: { maxAttempts: 3, backoff: { baseMs: 30_000, jitter: 'none' } } },
      services: { shop: { consumes: stock.consumes } },
    });
    const { messageId } = await bed.messaging().send(shop, 'stock.count', { sku: 'tea', count: 1 });
    const letter = await bed.deadLetter(messageId, { reason: 'max-attempts' });
    expect(letter.attempts.map((a) => [a.attempt, a.error.detail])).toEqual([
      [1, 'run 1 fails'],
      [2, 'run 2 fails'],
      [3, 'run 3 fails'],
    ]);
    expect(stock.runs).toHaveLength(3);
    expect((await bed.receipt(messageId)).groups[0]).toMatchObject({ state: 'dead-lettered', attempts: 3 });
    // Wrong reason: an assertion error that says what the entry has.
    await expect(bed.deadLetter(messageId, { reason: 'invalid' })).rejects.toThrow(/reason max-attempts, expected invalid.*run 3 fails/);
  });

  it('moves time by hand: a job that takes a virtual minute', async () => {
    bed = await createTestbed({ timers: vi, services: { shop: { serves: shop, handlers: shopHandlers, jobs: true } } });
    const job = await bed.jobs(shop).submit('slow', { ms: 50_000 });
    await bed.settle();
    expect((await bed.jobs(shop).status(job)).status).toBe('running');
    await bed.advance(50_000);
    expect(await bed.job(job.jobId)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(await bed.jobs(shop).wait(job)).toEqual({ waited: 50_000 });
  });

  it("ends a job at its operation's time limit (60 s of virtual time)", async () => {
    bed = await createTestbed({ timers: vi, services: { shop: { serves: shop, handlers: shopHandlers, jobs: true } } });
    const outcome = await bed.call(shop, 'slow', { ms: 3_600_000 }, { via: 'job', timeoutMs: 300_000 });
    expect(outcome).toMatchObject({ via: 'job', ok: false, error: { code: 'SB_DEADLINE_EXCEEDED' } });
    const record = await bed.job(outcome.jobId ?? '');
    expect(record.status).toBe('failed');
    expect((record.finishedAt ?? 0) - (record.startedAt ?? 0)).toBeGreaterThanOrEqual(60_000);
  });

  it('gives up waiting after its budget of virtual time, saying what it saw', async () => {
    bed = await createTestbed({
      timers: vi,
      timeoutMs: 5_000,
      services: {
        shop: {
          consumes: flaky(100).consumes,
          messaging: { retry: { maxAttempts: 100, backoff: { baseMs: 1_000, jitter: 'none', maxMs: 1_000 } } },
        },
      },
    });
    const { messageId } = await bed.messaging().send(shop, 'stock.count', { sku: 'tea', count: 1 });
    await expect(bed.receipt(messageId)).rejects.toMatchObject({
      code: 'SB_DEADLINE_EXCEEDED',
      message: expect.stringMatching(/5000 ms of fake time for the receipt .*shop: failed after \d+/),
    });
  });
});

describe('time, real', () => {
  let bed: Testbed | undefined;
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
  });

  it('retries on real time with a short backoff', async () => {
    const stock = flaky(2);
    bed = await createTestbed({ messaging: { retry: { backoff: { baseMs: 1 } } }, services: { shop: { consumes: stock.consumes } } });
    const { messageId } = await bed.messaging().send(shop, 'stock.count', { sku: 'jam', count: 2 });
    expect((await bed.receipt(messageId)).groups).toMatchObject([{ state: 'processed', attempts: 3 }]);
  });

  it('refuses to advance without fake timers, and times out a wait in real ms', async () => {
    bed = await createTestbed({ timeoutMs: 50, services: { shop: {} } });
    await expect(bed.advance(1_000)).rejects.toMatchObject({ code: 'SB_CONFIG_INVALID' });
    await expect(bed.receipt('no-such-message')).rejects.toMatchObject({
      code: 'SB_DEADLINE_EXCEEDED',
      message: expect.stringContaining('Waited 50 ms for the receipt of no-such-message; last seen: no receipt'),
    });
    await expect(bed.job('no-such-job')).rejects.toMatchObject({ message: expect.stringContaining('no such job') });
  });
});
