import { createMemoryBlobStore, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { startHousekeeping } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';

describe('housekeeping', () => {
  it('purges old receipts and replayed dead letters, keeps pending ones, deletes expired blobs', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const receipts = createMemoryReceiptStore({ clock });
    const deadLetters = createMemoryDeadLetterStore({ clock });
    const blobs = createMemoryBlobStore({ clock });

    await receipts.record([{ group: 'g', source: '/s', messageId: 'old', state: 'processed', attempt: 1 }]);
    const pending = await deadLetters.add({
      messageId: 'm1',
      source: '/s',
      topic: 't',
      group: 'g',
      headers: {},
      body: new Uint8Array([1]),
      reason: 'permanent',
      attempts: [],
    });
    const replayed = await deadLetters.add({
      messageId: 'm2',
      source: '/s',
      topic: 't',
      group: 'g',
      headers: {},
      body: new Uint8Array([2]),
      reason: 'permanent',
      attempts: [],
    });
    await deadLetters.take({ owner: 'r', leaseMs: 1000, ids: [replayed.id] });
    await deadLetters.markReplayed([replayed.id], 'r');
    const blob = await blobs.put(new Uint8Array([1, 2, 3]), { mediaType: 'application/octet-stream', expiresAt: now + 500 });

    now += 2 * 24 * 60 * 60 * 1000;
    await receipts.record([{ group: 'g', source: '/s', messageId: 'new', state: 'received' }]);

    const housekeeping = startHousekeeping({
      receipts,
      deadLetters,
      blobs,
      receiptRetentionMs: 24 * 60 * 60 * 1000,
      deadLetterRetentionMs: 1000,
      clock,
    });
    const report = await housekeeping.runOnce();
    await housekeeping.stop();

    expect(report).toEqual({ receipts: 1, deadLetters: 1, blobs: 1 });
    expect(await receipts.get({ group: 'g', source: '/s', messageId: 'old' })).toBeUndefined();
    expect(await receipts.get({ group: 'g', source: '/s', messageId: 'new' })).toBeDefined();
    expect(await deadLetters.get(pending.id)).toBeDefined();
    expect(await deadLetters.get(replayed.id)).toBeUndefined();
    expect(await blobs.has(blob.key)).toBe(false);
  });

  it('runs one sweep at a time', async () => {
    let purges = 0;
    const receipts = createMemoryReceiptStore();
    const original = receipts.purge.bind(receipts);
    receipts.purge = async (...args) => {
      purges++;
      return original(...args);
    };
    const housekeeping = startHousekeeping({ receipts });
    const [a, b] = await Promise.all([housekeeping.runOnce(), housekeeping.runOnce()]);
    await housekeeping.stop();
    expect(a).toBe(b);
    expect(purges).toBe(1);
  });
});
