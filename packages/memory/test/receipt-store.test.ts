import { newMessageId, type ReceiptStore, type ReceiptUpdate } from '@switchboard/core';
import { decideClaim, mergeReceipt } from '@switchboard/core/kit';
import { createMemoryReceiptStore } from '@switchboard/memory';
import { describeReceiptStoreConformance, type TestClock, testClock } from '@switchboard/testkit';
import { describe, expect, it } from 'vitest';

describeReceiptStoreConformance('memory', ({ clock }) => ({ store: createMemoryReceiptStore({ clock }) }));

describe('MemoryReceiptStore', () => {
  it('builds first claims and processed marks exactly as the core rules do', async () => {
    const clock = testClock();
    await expectCoreRules(createMemoryReceiptStore({ clock: clock.now }), clock);
  });
});

/** The stores build first claims and `processed` marks without the general merge: they must equal the core rules. */
async function expectCoreRules(store: ReceiptStore, clock: TestClock): Promise<void> {
  const problem = { type: 'urn:x', title: 'x', status: 500, code: 'SB_HANDLER_FAILED', detail: 'boom' };
  const request = { group: 'g', source: 's', messageId: newMessageId(), owner: 'w', leaseMs: 1000, type: 't', topic: 'q' };
  expect(await store.claim(request)).toStrictEqual(decideClaim(undefined, request, clock.now()));
  const bare = { group: 'g', source: 's', messageId: newMessageId(), owner: 'w', leaseMs: 500 };
  expect(await store.claim(bare)).toStrictEqual(decideClaim(undefined, bare, clock.now()));

  const cases: {
    before: Omit<ReceiptUpdate, 'group' | 'source' | 'messageId'>[];
    update: Omit<ReceiptUpdate, 'group' | 'source' | 'messageId'>;
  }[] = [
    { before: [], update: { state: 'processed', attempt: 2, result: 'r', type: 't' } },
    { before: [], update: { state: 'processed' } },
    { before: [{ state: 'processing', attempt: 1, type: 't' }], update: { state: 'processed', attempt: 1, result: '{}' } },
    { before: [{ state: 'processing', attempt: 3 }], update: { state: 'processed', attempt: 1, type: 'other', topic: 'q' } },
    { before: [{ state: 'failed', attempt: 2, error: problem }], update: { state: 'processed', at: 1 } },
    { before: [{ state: 'dead-lettered', attempt: 1, error: problem, topic: 'q' }], update: { state: 'processed', attempt: 4 } },
    { before: [{ state: 'processed', attempt: 1, result: 'first' }], update: { state: 'processed', attempt: 2, result: 'second' } },
  ];
  for (const { before, update } of cases) {
    const key = { group: 'g', source: 's', messageId: newMessageId() };
    await store.record(before.map((b) => ({ ...key, ...b })));
    clock.advance(7);
    const current = await store.get(key);
    const expected = mergeReceipt(current, { ...key, ...update }, clock.now());
    const outcome = expected === undefined ? 'ignored' : current === undefined ? 'created' : 'updated';
    expect(await store.record([{ ...key, ...update }])).toEqual([outcome]);
    expect(await store.get(key)).toStrictEqual(expected ?? current);
  }
}
