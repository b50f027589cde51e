import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId, type ProblemDetails, type ReceiptStore, type ReceiptUpdate } from '@switchboard/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestClock, testClock } from './store-clock.js';

export interface ReceiptStoreHarness {
  readonly store: ReceiptStore;
  /** Another handle on the same storage (another connection or process), where the engine has one. */
  readonly second?: ReceiptStore;
  /** Removes what the harness created (files, tables). The suite closes the stores itself. */
  teardown?(): Promise<void>;
}

export type ReceiptStoreFactory = (options: { readonly clock: () => number }) => ReceiptStoreHarness | Promise<ReceiptStoreHarness>;

const LEASE = 30_000;

function problem(detail: string): ProblemDetails {
  return { type: 'urn:switchboard:error:handler-failed', title: 'Handler failed', status: 500, code: 'SB_HANDLER_FAILED', detail };
}

function group(): string {
  return `group-${randomBytes(5).toString('hex')}`;
}

/**
 * The behaviour every `ReceiptStore` must have. Call it from the adapter's test file:
 * `describeReceiptStoreConformance('sqlite', ({ clock }) => ({ store: new SqliteReceiptStore({ path, clock }) }))`.
 */
export function describeReceiptStoreConformance(name: string, factory: ReceiptStoreFactory): void {
  describe(`ReceiptStore conformance: ${name}`, () => {
    let clock: TestClock;
    let harness: ReceiptStoreHarness;
    let store: ReceiptStore;

    beforeEach(async () => {
      clock = testClock();
      harness = await factory({ clock: clock.now });
      store = harness.store;
    });

    afterEach(async () => {
      await harness.second?.close();
      await store.close();
      await harness.teardown?.();
    });

    describe('absence', () => {
      it('answers undefined, an empty list and an empty page for a MessageId never received', async () => {
        const id = newMessageId();
        expect(await store.get(id, group())).toBeUndefined();
        expect(await store.getAll(id)).toEqual([]);
        expect((await store.list({ group: group() })).items).toEqual([]);
        expect(await store.extendLease({ group: group(), messageId: id }, 'w', LEASE)).toBe(false);
        expect(await store.reopen([{ group: group(), messageId: id }])).toBe(0);
      });
    });

    describe('state transitions', () => {
      it('records received → processing → processed with times, attempts, type, source and result', async () => {
        const g = group();
        const id = newMessageId();
        const t0 = clock.now();
        expect(
          await store.record([{ group: g, messageId: id, state: 'received', type: 'order.placed', source: '/a', topic: 'orders' }]),
        ).toEqual(['created']);
        let receipt = await store.get(id, g);
        expect(receipt).toMatchObject({ group: g, messageId: id, state: 'received', attempts: 0, receivedAt: t0, updatedAt: t0 });
        expect(receipt).toMatchObject({ type: 'order.placed', source: '/a', topic: 'orders' });

        clock.advance(10);
        const claim = await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: LEASE });
        expect(claim.outcome).toBe('claimed');
        expect(claim.receipt).toMatchObject({ state: 'processing', attempts: 1, leaseOwner: 'w1', leaseUntil: t0 + 10 + LEASE });

        clock.advance(10);
        expect(await store.record([{ group: g, messageId: id, state: 'processed', attempt: 1, result: '{"ok":true}' }])).toEqual([
          'updated',
        ]);
        receipt = await store.get(id, g);
        expect(receipt).toMatchObject({ state: 'processed', attempts: 1, receivedAt: t0, updatedAt: t0 + 20, processedAt: t0 + 20 });
        expect(receipt?.result).toBe('{"ok":true}');
        expect(receipt?.type).toBe('order.placed');
        expect(receipt?.leaseOwner).toBeUndefined();
        expect(receipt?.leaseUntil).toBeUndefined();
      });

      it('never moves a processed record backwards (late processing, received, failed, dead-lettered)', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([{ group: g, messageId: id, state: 'processed', attempt: 1 }]);
        const late: ReceiptUpdate[] = [
          { group: g, messageId: id, state: 'processing', attempt: 1 },
          { group: g, messageId: id, state: 'received' },
          { group: g, messageId: id, state: 'failed', attempt: 2, error: problem('late') },
          { group: g, messageId: id, state: 'dead-lettered', attempt: 3, error: problem('late') },
        ];
        expect(await store.record(late)).toEqual(['ignored', 'ignored', 'ignored', 'ignored']);
        const receipt = await store.get(id, g);
        expect(receipt?.state).toBe('processed');
        expect(receipt?.attempts).toBe(1);
        expect(receipt?.error).toBeUndefined();
      });

      it('orders updates by attempt: a late failure of attempt 1 does not hide attempt 2', async () => {
        const g = group();
        const id = newMessageId();
        expect(
          await store.record([
            { group: g, messageId: id, state: 'processing', attempt: 1 },
            { group: g, messageId: id, state: 'processing', attempt: 2 },
            { group: g, messageId: id, state: 'failed', attempt: 1, error: problem('first') },
            { group: g, messageId: id, state: 'received' },
          ]),
        ).toEqual(['created', 'updated', 'ignored', 'ignored']);
        const receipt = await store.get(id, g);
        expect(receipt).toMatchObject({ state: 'processing', attempts: 2 });
        expect(receipt?.error).toBeUndefined();
      });

      it('keeps the latest error through a retry and clears it when processed', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([
          { group: g, messageId: id, state: 'processing', attempt: 1 },
          { group: g, messageId: id, state: 'failed', attempt: 1, error: problem('boom 1') },
        ]);
        expect((await store.get(id, g))?.error).toMatchObject({ code: 'SB_HANDLER_FAILED', detail: 'boom 1', status: 500 });
        await store.record([{ group: g, messageId: id, state: 'processing', attempt: 2 }]);
        expect((await store.get(id, g))?.error?.detail).toBe('boom 1');
        await store.record([{ group: g, messageId: id, state: 'processed', attempt: 2 }]);
        const receipt = await store.get(id, g);
        expect(receipt?.state).toBe('processed');
        expect(receipt?.error).toBeUndefined();
      });

      it('treats dead-lettered as final except for processed, and reopen moves it back for a replay', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([
          { group: g, messageId: id, state: 'failed', attempt: 3, error: problem('gave up') },
          { group: g, messageId: id, state: 'dead-lettered', attempt: 3, error: problem('gave up') },
        ]);
        expect(await store.record([{ group: g, messageId: id, state: 'processing', attempt: 4 }])).toEqual(['ignored']);
        expect((await store.claim({ group: g, messageId: id, owner: 'w', leaseMs: LEASE })).outcome).toBe('dead-lettered');

        expect(await store.reopen([{ group: g, messageId: id }])).toBe(1);
        const reopened = await store.get(id, g);
        expect(reopened).toMatchObject({ state: 'received', attempts: 3 });
        expect(reopened?.error?.detail).toBe('gave up');
        const claim = await store.claim({ group: g, messageId: id, owner: 'w', leaseMs: LEASE });
        expect(claim.outcome).toBe('claimed');
        expect(claim.receipt.attempts).toBe(4);

        const other = newMessageId();
        await store.record([{ group: g, messageId: other, state: 'dead-lettered', attempt: 1, error: problem('x') }]);
        expect(await store.record([{ group: g, messageId: other, state: 'processed', attempt: 1 }])).toEqual(['updated']);
        expect((await store.get(other, g))?.state).toBe('processed');
        expect(await store.reopen([{ group: g, messageId: other }])).toBe(0);
      });

      it('keeps one independent record per consumer group', async () => {
        const [g1, g2] = [`a-${group()}`, `b-${group()}`];
        const id = newMessageId();
        await store.record([
          { group: g1, messageId: id, state: 'processed', attempt: 1 },
          { group: g2, messageId: id, state: 'failed', attempt: 1, error: problem('b failed') },
        ]);
        expect((await store.get(id, g1))?.state).toBe('processed');
        expect((await store.get(id, g2))?.state).toBe('failed');
        const all = await store.getAll(id);
        expect(all.map((r) => [r.group, r.state])).toEqual([
          [g1, 'processed'],
          [g2, 'failed'],
        ]);
      });
    });

    describe('inbox (claim)', () => {
      it('claims once, answers in-progress while the lease holds, and lets a redelivery claim after it ran out', async () => {
        const g = group();
        const id = newMessageId();
        const first = await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: 1000 });
        expect(first.outcome).toBe('claimed');
        clock.advance(400);
        const second = await store.claim({ group: g, messageId: id, owner: 'w2', leaseMs: 1000 });
        expect(second.outcome).toBe('in-progress');
        if (second.outcome === 'in-progress') expect(second.retryAfterMs).toBe(600);
        expect((await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: 1000 })).outcome).toBe('in-progress');

        clock.advance(601);
        const third = await store.claim({ group: g, messageId: id, owner: 'w2', leaseMs: 1000 });
        expect(third.outcome).toBe('claimed');
        expect(third.receipt).toMatchObject({ attempts: 2, leaseOwner: 'w2' });
      });

      it('answers duplicate-processed after processed, without changing the record', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: LEASE });
        await store.record([{ group: g, messageId: id, state: 'processed', attempt: 1, result: 'done' }]);
        const before = await store.get(id, g);
        clock.advance(5);
        const dup = await store.claim({ group: g, messageId: id, owner: 'w2', leaseMs: LEASE });
        expect(dup.outcome).toBe('duplicate-processed');
        expect(dup.receipt).toEqual(before);
        expect(await store.get(id, g)).toEqual(before);
      });

      it('lets a failed message be claimed again with the next attempt number', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: LEASE });
        await store.record([{ group: g, messageId: id, state: 'failed', attempt: 1, error: problem('retry me') }]);
        const again = await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: LEASE });
        expect(again.outcome).toBe('claimed');
        expect(again.receipt).toMatchObject({ state: 'processing', attempts: 2 });
      });

      it('lets exactly one of many concurrent claimers win', async () => {
        const g = group();
        const ids = Array.from({ length: 5 }, () => newMessageId());
        const handles = harness.second === undefined ? [store] : [store, harness.second];
        const claims = ids.flatMap((id) =>
          Array.from({ length: 12 }, (_, i) =>
            (handles[i % handles.length] as ReceiptStore).claim({ group: g, messageId: id, owner: `w${i}`, leaseMs: LEASE }),
          ),
        );
        const results = await Promise.all(claims);
        for (const id of ids) {
          const mine = results.filter((r) => r.receipt.messageId === id);
          expect(mine.filter((r) => r.outcome === 'claimed')).toHaveLength(1);
          expect(mine.filter((r) => r.outcome === 'in-progress')).toHaveLength(11);
        }
      });

      it('claims a batch in order, seeing its own earlier items', async () => {
        const g = group();
        const [fresh, done, dead] = [newMessageId(), newMessageId(), newMessageId()];
        await store.record([
          { group: g, messageId: done, state: 'processed', attempt: 1 },
          { group: g, messageId: dead, state: 'dead-lettered', attempt: 2, error: problem('dead') },
        ]);
        const results = await store.claimBatch([
          { group: g, messageId: fresh, owner: 'w', leaseMs: LEASE, type: 't.fresh' },
          { group: g, messageId: done, owner: 'w', leaseMs: LEASE },
          { group: g, messageId: fresh, owner: 'w', leaseMs: LEASE },
          { group: g, messageId: dead, owner: 'w', leaseMs: LEASE },
        ]);
        expect(results.map((r) => r.outcome)).toEqual(['claimed', 'duplicate-processed', 'in-progress', 'dead-lettered']);
        expect((await store.get(fresh, g))?.type).toBe('t.fresh');
      });

      it('extends a lease only for its owner', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, messageId: id, owner: 'w1', leaseMs: 1000 });
        clock.advance(900);
        expect(await store.extendLease({ group: g, messageId: id }, 'w2', 5000)).toBe(false);
        expect(await store.extendLease({ group: g, messageId: id }, 'w1', 5000)).toBe(true);
        expect((await store.get(id, g))?.leaseUntil).toBe(clock.now() + 5000);
        clock.advance(1000);
        expect((await store.claim({ group: g, messageId: id, owner: 'w2', leaseMs: 1000 })).outcome).toBe('in-progress');
        await store.record([{ group: g, messageId: id, state: 'processed', attempt: 1 }]);
        expect(await store.extendLease({ group: g, messageId: id }, 'w1', 5000)).toBe(false);
      });
    });

    describe('batching', () => {
      it('applies a large batch of updates in order and reports each outcome', async () => {
        const g = group();
        const ids = Array.from({ length: 300 }, () => newMessageId());
        const updates: ReceiptUpdate[] = ids.flatMap((id) => [
          { group: g, messageId: id, state: 'received' as const, type: 'bulk' },
          { group: g, messageId: id, state: 'processing' as const, attempt: 1 },
          { group: g, messageId: id, state: 'processed' as const, attempt: 1 },
          { group: g, messageId: id, state: 'processing' as const, attempt: 1 },
        ]);
        const outcomes = await store.record(updates);
        expect(outcomes).toHaveLength(1200);
        expect(outcomes.filter((o) => o === 'created')).toHaveLength(300);
        expect(outcomes.filter((o) => o === 'updated')).toHaveLength(600);
        expect(outcomes.filter((o) => o === 'ignored')).toHaveLength(300);
        const processed = await store.list({ group: g, state: 'processed', limit: 1000 });
        expect(processed.items).toHaveLength(300);
        expect(new Set(processed.items.map((r) => r.messageId))).toEqual(new Set(ids));
      });

      it('accepts an empty batch', async () => {
        expect(await store.record([])).toEqual([]);
        expect(await store.claimBatch([])).toEqual([]);
      });

      it('recordAndClaim (where a store has it) records first, then claims, seeing its own updates', async () => {
        if (store.recordAndClaim === undefined) return;
        const g = group();
        const [done, next, again] = [newMessageId(), newMessageId(), newMessageId()];
        await store.claimBatch([
          { group: g, messageId: done, owner: 'w', leaseMs: LEASE },
          { group: g, messageId: again, owner: 'w', leaseMs: LEASE },
        ]);
        const { outcomes, claims } = await store.recordAndClaim(
          [
            { group: g, messageId: done, state: 'processed', attempt: 1, result: 'ok' },
            { group: g, messageId: again, state: 'failed', attempt: 1, error: problem('boom') },
          ],
          [
            { group: g, messageId: next, owner: 'w', leaseMs: LEASE, type: 't.next' },
            { group: g, messageId: done, owner: 'w', leaseMs: LEASE },
            { group: g, messageId: again, owner: 'w', leaseMs: LEASE },
          ],
        );
        expect(outcomes).toEqual(['updated', 'updated']);
        expect(claims.map((c) => c.outcome)).toEqual(['claimed', 'duplicate-processed', 'claimed']);
        expect(claims[2]?.outcome === 'claimed' && claims[2].receipt.attempts).toBe(2);
        expect(await store.get(done, g)).toMatchObject({ state: 'processed', result: 'ok' });
        expect(await store.get(next, g)).toMatchObject({ state: 'processing', type: 't.next', leaseOwner: 'w' });
        expect(await store.get(again, g)).toMatchObject({ state: 'processing', attempts: 2 });
      });
    });

    describe('queries', () => {
      it('lists by group, state, type and time, paging without gaps or repeats', async () => {
        const g = group();
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          const id = newMessageId();
          ids.push(id);
          await store.record([{ group: g, messageId: id, state: 'received', type: i % 2 === 0 ? 'even' : 'odd', topic: 'list' }]);
          clock.advance(10);
        }
        await store.record([{ group: group(), messageId: newMessageId(), state: 'received', type: 'even' }]);
        await store.record([{ group: g, messageId: ids[1] as string, state: 'processed', attempt: 1 }]);

        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list({ group: g, limit: 3, ...(cursor === undefined ? {} : { cursor }) });
          seen.push(...page.items.map((r) => r.messageId));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== undefined && pages < 10);
        expect(seen).toEqual(ids);
        expect(pages).toBe(3);

        expect((await store.list({ group: g, type: 'even' })).items).toHaveLength(4);
        expect((await store.list({ group: g, state: 'processed' })).items.map((r) => r.messageId)).toEqual([ids[1]]);
        expect((await store.list({ group: g, topic: 'list', state: 'received' })).items).toHaveLength(6);
        const first = (await store.get(ids[0] as string, g))?.receivedAt ?? 0;
        const window = await store.list({ group: g, receivedFrom: first + 20, receivedTo: first + 50 });
        expect(window.items.map((r) => r.messageId)).toEqual(ids.slice(2, 5));
      });

      it('refuses a malformed cursor with SB_BAD_REQUEST', async () => {
        await expect(store.list({ cursor: 'not-a-cursor' })).rejects.toSatisfy((e: unknown) => isSwitchboardError(e, 'SB_BAD_REQUEST'));
      });
    });

    describe('retention', () => {
      it('purges records last updated before the cutoff, optionally by state', async () => {
        const g = group();
        const [oldDone, oldFailed, fresh] = [newMessageId(), newMessageId(), newMessageId()];
        await store.record([
          { group: g, messageId: oldDone, state: 'processed', attempt: 1 },
          { group: g, messageId: oldFailed, state: 'failed', attempt: 1, error: problem('old') },
        ]);
        clock.advance(60_000);
        const cutoff = clock.now();
        await store.record([{ group: g, messageId: fresh, state: 'processed', attempt: 1 }]);

        expect(await store.purge(cutoff, { states: ['processed'] })).toBe(1);
        expect(await store.get(oldDone, g)).toBeUndefined();
        expect((await store.get(oldFailed, g))?.state).toBe('failed');
        expect(await store.purge(cutoff)).toBe(1);
        expect(await store.get(oldFailed, g)).toBeUndefined();
        expect((await store.get(fresh, g))?.state).toBe('processed');
        expect(await store.purge(cutoff, { states: [] })).toBe(0);

        // After purge the inbox forgets: a very late duplicate is claimed as new.
        expect((await store.claim({ group: g, messageId: oldDone, owner: 'w', leaseMs: LEASE })).outcome).toBe('claimed');
      });
    });

    describe('lifecycle', () => {
      it('rejects calls after close with SB_CLOSED', async () => {
        await store.close();
        await expect(store.get(newMessageId(), group())).rejects.toSatisfy((e: unknown) => isSwitchboardError(e, 'SB_CLOSED'));
      });
    });
  });
}
