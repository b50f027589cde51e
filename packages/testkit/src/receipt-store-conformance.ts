import { randomBytes } from 'node:crypto';
import {
  CLOUDEVENT_ID_MAX_BYTES,
  CLOUDEVENT_SOURCE_MAX_BYTES,
  isSwitchboardError,
  newMessageId,
  type ProblemDetails,
  type ReceiptKey,
  type ReceiptStore,
  type ReceiptUpdate,
} from '@switchboard/core';
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

/** What an engine declares about itself (as Watermill's `Features`); cases that do not apply are not defined. */
export interface ReceiptStoreFeatures {
  /**
   * Values this engine cannot hold although they are within the identity limits (a NUL byte on
   * PostgreSQL, an index row over its size limit, a NUL in a Redis group or source). Each is laid
   * over a `processed` update and must be refused with `SB_STORE_REFUSED`, the whole batch unwritten.
   */
  readonly unholdable?: readonly { readonly label: string; readonly update: Partial<ReceiptUpdate> }[];
}

const LEASE = 30_000;

/** The CloudEvents `source` of most cases, and a second source that uses the same ids. */
const SOURCE = '/sources/a';
const OTHER = '/sources/b';

function at(group: string, messageId: string, source: string = SOURCE): ReceiptKey {
  return { group, source, messageId };
}

/** A string of exactly `bytes` UTF-8 bytes (two-byte characters, so that bytes and characters differ), plus `extra` ASCII bytes. */
function utf8Of(prefix: string, bytes: number, extra = 0): string {
  const rest = bytes - Buffer.byteLength(prefix);
  return `${prefix}${'é'.repeat(Math.floor(rest / 2))}${rest % 2 === 1 ? 'x' : ''}${'x'.repeat(extra)}`;
}

function isRefused(error: unknown): boolean {
  return isSwitchboardError(error, 'SB_STORE_REFUSED') && error.retryable === false;
}

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
export function describeReceiptStoreConformance(name: string, factory: ReceiptStoreFactory, features: ReceiptStoreFeatures = {}): void {
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
        expect(await store.get(at(group(), id))).toBeUndefined();
        expect(await store.getAll(id)).toEqual([]);
        expect(await store.getAll(id, SOURCE)).toEqual([]);
        expect((await store.list({ group: group() })).items).toEqual([]);
        expect(await store.extendLease({ group: group(), source: SOURCE, messageId: id }, 'w', LEASE)).toBe(false);
        expect(await store.reopen([{ group: group(), source: SOURCE, messageId: id }])).toBe(0);
      });
    });

    describe('state transitions', () => {
      it('records received → processing → processed with times, attempts, source, type and result', async () => {
        const g = group();
        const id = newMessageId();
        const t0 = clock.now();
        expect(
          await store.record([{ group: g, source: SOURCE, messageId: id, state: 'received', type: 'order.placed', topic: 'orders' }]),
        ).toEqual(['created']);
        let receipt = await store.get(at(g, id));
        expect(receipt).toMatchObject({
          group: g,
          source: SOURCE,
          messageId: id,
          state: 'received',
          attempts: 0,
          receivedAt: t0,
          updatedAt: t0,
        });
        expect(receipt).toMatchObject({ type: 'order.placed', topic: 'orders' });

        clock.advance(10);
        const claim = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: LEASE });
        expect(claim.outcome).toBe('claimed');
        expect(claim.receipt).toMatchObject({ state: 'processing', attempts: 1, leaseOwner: 'w1', leaseUntil: t0 + 10 + LEASE });

        clock.advance(10);
        expect(
          await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processed', attempt: 1, result: '{"ok":true}' }]),
        ).toEqual(['updated']);
        receipt = await store.get(at(g, id));
        expect(receipt).toMatchObject({ state: 'processed', attempts: 1, receivedAt: t0, updatedAt: t0 + 20, processedAt: t0 + 20 });
        expect(receipt?.result).toBe('{"ok":true}');
        expect(receipt?.type).toBe('order.placed');
        expect(receipt?.leaseOwner).toBeUndefined();
        expect(receipt?.leaseUntil).toBeUndefined();
      });

      it('never moves a processed record backwards (late processing, received, failed, dead-lettered)', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processed', attempt: 1 }]);
        const late: ReceiptUpdate[] = [
          { group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 1 },
          { group: g, source: SOURCE, messageId: id, state: 'received' },
          { group: g, source: SOURCE, messageId: id, state: 'failed', attempt: 2, error: problem('late') },
          { group: g, source: SOURCE, messageId: id, state: 'dead-lettered', attempt: 3, error: problem('late') },
        ];
        expect(await store.record(late)).toEqual(['ignored', 'ignored', 'ignored', 'ignored']);
        const receipt = await store.get(at(g, id));
        expect(receipt?.state).toBe('processed');
        expect(receipt?.attempts).toBe(1);
        expect(receipt?.error).toBeUndefined();
      });

      it('orders updates by attempt: a late failure of attempt 1 does not hide attempt 2', async () => {
        const g = group();
        const id = newMessageId();
        expect(
          await store.record([
            { group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 1 },
            { group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 2 },
            { group: g, source: SOURCE, messageId: id, state: 'failed', attempt: 1, error: problem('first') },
            { group: g, source: SOURCE, messageId: id, state: 'received' },
          ]),
        ).toEqual(['created', 'updated', 'ignored', 'ignored']);
        const receipt = await store.get(at(g, id));
        expect(receipt).toMatchObject({ state: 'processing', attempts: 2 });
        expect(receipt?.error).toBeUndefined();
      });

      it('keeps the latest error through a retry and clears it when processed', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([
          { group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 1 },
          { group: g, source: SOURCE, messageId: id, state: 'failed', attempt: 1, error: problem('boom 1') },
        ]);
        expect((await store.get(at(g, id)))?.error).toMatchObject({ code: 'SB_HANDLER_FAILED', detail: 'boom 1', status: 500 });
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 2 }]);
        expect((await store.get(at(g, id)))?.error?.detail).toBe('boom 1');
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processed', attempt: 2 }]);
        const receipt = await store.get(at(g, id));
        expect(receipt?.state).toBe('processed');
        expect(receipt?.error).toBeUndefined();
      });

      it('treats dead-lettered as final except for processed, and reopen moves it back for a replay', async () => {
        const g = group();
        const id = newMessageId();
        await store.record([
          { group: g, source: SOURCE, messageId: id, state: 'failed', attempt: 3, error: problem('gave up') },
          { group: g, source: SOURCE, messageId: id, state: 'dead-lettered', attempt: 3, error: problem('gave up') },
        ]);
        expect(await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processing', attempt: 4 }])).toEqual(['ignored']);
        expect((await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w', leaseMs: LEASE })).outcome).toBe('dead-lettered');

        expect(await store.reopen([{ group: g, source: SOURCE, messageId: id }])).toBe(1);
        const reopened = await store.get(at(g, id));
        expect(reopened).toMatchObject({ state: 'received', attempts: 3 });
        expect(reopened?.error?.detail).toBe('gave up');
        const claim = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w', leaseMs: LEASE });
        expect(claim.outcome).toBe('claimed');
        expect(claim.receipt.attempts).toBe(4);

        const other = newMessageId();
        await store.record([{ group: g, source: SOURCE, messageId: other, state: 'dead-lettered', attempt: 1, error: problem('x') }]);
        expect(await store.record([{ group: g, source: SOURCE, messageId: other, state: 'processed', attempt: 1 }])).toEqual(['updated']);
        expect((await store.get(at(g, other)))?.state).toBe('processed');
        expect(await store.reopen([{ group: g, source: SOURCE, messageId: other }])).toBe(0);
      });

      it('keeps one independent record per consumer group', async () => {
        const [g1, g2] = [`a-${group()}`, `b-${group()}`];
        const id = newMessageId();
        await store.record([
          { group: g1, source: SOURCE, messageId: id, state: 'processed', attempt: 1 },
          { group: g2, source: SOURCE, messageId: id, state: 'failed', attempt: 1, error: problem('b failed') },
        ]);
        expect((await store.get(at(g1, id)))?.state).toBe('processed');
        expect((await store.get(at(g2, id)))?.state).toBe('failed');
        const all = await store.getAll(id);
        expect(all.map((r) => [r.group, r.state])).toEqual([
          [g1, 'processed'],
          [g2, 'failed'],
        ]);
      });
    });

    describe('sender (the principal that delivered the event)', () => {
      it('keeps the sender of the claim or update that created the record, through every later change', async () => {
        const g = group();
        const claimed = at(g, newMessageId());
        const first = await store.claim({ ...claimed, owner: 'w1', leaseMs: LEASE, sender: 'service-a' });
        expect(first.receipt.sender).toBe('service-a');
        await store.record([{ ...claimed, state: 'failed', attempt: 1, error: problem('once'), sender: 'intruder' }]);
        const second = await store.claim({ ...claimed, owner: 'w2', leaseMs: LEASE, sender: 'intruder' });
        expect(second.receipt.sender).toBe('service-a');
        await store.record([{ ...claimed, state: 'processed', attempt: 2, result: 'ok', sender: 'intruder' }]);
        expect((await store.get(claimed))?.sender).toBe('service-a');
        expect((await store.getAll(claimed.messageId, SOURCE))[0]?.sender).toBe('service-a');

        const recorded = at(g, newMessageId());
        await store.record([{ ...recorded, state: 'processed', attempt: 1, sender: 'service-b' }]);
        expect((await store.get(recorded))?.sender).toBe('service-b');

        const anonymous = at(g, newMessageId());
        await store.claim({ ...anonymous, owner: 'w1', leaseMs: LEASE });
        await store.claim({ ...anonymous, owner: 'w1', leaseMs: LEASE, sender: 'late-comer' });
        await store.record([{ ...anonymous, state: 'processed', attempt: 1, sender: 'late-comer' }]);
        expect((await store.get(anonymous))?.sender).toBeUndefined();
      });
    });

    describe('event identity (source + MessageId)', () => {
      it('keeps the same MessageId from two sources as two independent records', async () => {
        const g = group();
        const id = newMessageId();
        const [a, b] = [at(g, id, SOURCE), at(g, id, OTHER)];
        expect((await store.claim({ ...a, owner: 'w1', leaseMs: LEASE })).outcome).toBe('claimed');
        const claimB = await store.claim({ ...b, owner: 'w2', leaseMs: LEASE });
        expect(claimB.outcome).toBe('claimed');
        expect(claimB.receipt).toMatchObject({ source: OTHER, messageId: id, attempts: 1, leaseOwner: 'w2' });

        expect(await store.record([{ ...a, state: 'processed', attempt: 1, result: 'a' }])).toEqual(['updated']);
        expect((await store.claim({ ...a, owner: 'w3', leaseMs: LEASE })).outcome).toBe('duplicate-processed');
        expect((await store.claim({ ...b, owner: 'w3', leaseMs: LEASE })).outcome).toBe('in-progress');
        await store.record([{ ...b, state: 'failed', attempt: 1, error: problem('b failed') }]);
        const again = await store.claim({ ...b, owner: 'w3', leaseMs: LEASE });
        expect(again.outcome).toBe('claimed');
        expect(again.receipt.attempts).toBe(2);

        expect(await store.get(a)).toMatchObject({ source: SOURCE, state: 'processed', attempts: 1, result: 'a' });
        const other = await store.get(b);
        expect(other).toMatchObject({ source: OTHER, state: 'processing', attempts: 2, leaseOwner: 'w3' });
        expect(other?.error?.detail).toBe('b failed');
        expect(await store.get(at(g, id, '/sources/never'))).toBeUndefined();
      });

      it('claims the same MessageId from two sources in one batch as two events', async () => {
        const g = group();
        const id = newMessageId();
        const results = await store.claimBatch([
          { ...at(g, id, SOURCE), owner: 'w', leaseMs: LEASE },
          { ...at(g, id, OTHER), owner: 'w', leaseMs: LEASE },
          { ...at(g, id, SOURCE), owner: 'w', leaseMs: LEASE },
        ]);
        expect(results.map((r) => [r.outcome, r.receipt.source])).toEqual([
          ['claimed', SOURCE],
          ['claimed', OTHER],
          ['in-progress', SOURCE],
        ]);
      });

      it('getAll without a source answers every source that used the id (by source, then group); with one, only it', async () => {
        const [g1, g2] = [`a-${group()}`, `b-${group()}`];
        const id = newMessageId();
        await store.record([
          { ...at(g2, id, OTHER), state: 'received' },
          { ...at(g1, id, SOURCE), state: 'processed', attempt: 1 },
          { ...at(g2, id, SOURCE), state: 'received' },
          { ...at(g1, id, OTHER), state: 'failed', attempt: 1, error: problem('x') },
        ]);
        const all = await store.getAll(id);
        expect(all.map((r) => [r.source, r.group, r.state])).toEqual([
          [SOURCE, g1, 'processed'],
          [SOURCE, g2, 'received'],
          [OTHER, g1, 'failed'],
          [OTHER, g2, 'received'],
        ]);
        expect((await store.getAll(id, OTHER)).map((r) => [r.source, r.group])).toEqual([
          [OTHER, g1],
          [OTHER, g2],
        ]);
        expect(await store.getAll(id, '/sources/never')).toEqual([]);
        expect(await store.getAll(newMessageId(), SOURCE)).toEqual([]);
      });

      it('lists by source, alone and with a group, paging in order', async () => {
        const [g1, g2] = [`a-${group()}`, `b-${group()}`];
        const shared = newMessageId();
        const fromOther: ReceiptKey[] = [];
        for (let i = 0; i < 4; i++) {
          const key = at(i % 2 === 0 ? g1 : g2, i === 0 ? shared : newMessageId(), OTHER);
          fromOther.push(key);
          await store.record([
            { ...key, state: 'received', type: 'listed' },
            { ...at(key.group, newMessageId(), SOURCE), state: 'received', type: 'listed' },
          ]);
          clock.advance(5);
        }
        await store.record([{ ...at(g1, shared, SOURCE), state: 'received' }]);

        const seen: ReceiptKey[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list({ source: OTHER, limit: 1, ...(cursor === undefined ? {} : { cursor }) });
          seen.push(...page.items.map((r) => at(r.group, r.messageId, r.source)));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== undefined && pages < 10);
        expect(seen).toEqual(fromOther);
        const mine = await store.list({ group: g1, source: OTHER });
        expect(mine.items.map((r) => r.messageId)).toEqual([fromOther[0]?.messageId, fromOther[2]?.messageId]);
        expect((await store.list({ source: SOURCE, type: 'listed' })).items).toHaveLength(4);
        expect((await store.list({ source: SOURCE })).items).toHaveLength(5);
      });

      it('extends a lease and reopens a record of one source only', async () => {
        const g = group();
        const id = newMessageId();
        const [a, b] = [at(g, id, SOURCE), at(g, id, OTHER)];
        await store.claimBatch([
          { ...a, owner: 'w', leaseMs: 1000 },
          { ...b, owner: 'w', leaseMs: 1000 },
        ]);
        clock.advance(10);
        expect(await store.extendLease(a, 'w', 5000)).toBe(true);
        expect((await store.get(a))?.leaseUntil).toBe(clock.now() + 5000);
        expect((await store.get(b))?.leaseUntil).toBe(clock.now() - 10 + 1000);

        await store.record([
          { ...a, state: 'dead-lettered', attempt: 1, error: problem('a') },
          { ...b, state: 'dead-lettered', attempt: 1, error: problem('b') },
        ]);
        expect(await store.reopen([a])).toBe(1);
        expect((await store.get(a))?.state).toBe('received');
        expect((await store.get(b))?.state).toBe('dead-lettered');
      });
    });

    describe('values the store refuses', () => {
      const idAtLimit = () => utf8Of(`${newMessageId()}-`, CLOUDEVENT_ID_MAX_BYTES);
      const sourceAtLimit = utf8Of('urn:test:', CLOUDEVENT_SOURCE_MAX_BYTES);

      it('holds an id and a source of exactly the identity limits (UTF-8 bytes)', async () => {
        const g = group();
        const key = at(g, idAtLimit(), sourceAtLimit);
        expect(Buffer.byteLength(key.messageId)).toBe(CLOUDEVENT_ID_MAX_BYTES);
        expect(Buffer.byteLength(key.source)).toBe(CLOUDEVENT_SOURCE_MAX_BYTES);
        expect((await store.claim({ ...key, owner: 'w', leaseMs: LEASE })).outcome).toBe('claimed');
        expect(await store.record([{ ...key, state: 'processed', attempt: 1 }])).toEqual(['updated']);
        expect(await store.get(key)).toMatchObject({ ...key, state: 'processed' });
        expect((await store.getAll(key.messageId, key.source)).map((r) => r.group)).toEqual([g]);
        expect((await store.list({ source: sourceAtLimit })).items.map((r) => r.messageId)).toEqual([key.messageId]);
      });

      it('refuses an id or a source over the limit with the permanent SB_STORE_REFUSED, writing nothing of the batch', async () => {
        const g = group();
        const ok = at(g, newMessageId());
        const longId = at(g, utf8Of('', CLOUDEVENT_ID_MAX_BYTES, 1));
        const longSource = at(g, newMessageId(), utf8Of('urn:test:', CLOUDEVENT_SOURCE_MAX_BYTES, 1));
        // Over the limit in bytes, not in characters: a store that counted characters would take them.
        expect(longId.messageId.length).toBeLessThan(CLOUDEVENT_ID_MAX_BYTES);
        expect(longSource.source.length).toBeLessThan(CLOUDEVENT_SOURCE_MAX_BYTES);

        const recorded = await store
          .record([
            { ...ok, state: 'received' },
            { ...longId, state: 'received' },
          ])
          .catch((e: unknown) => e);
        expect(isRefused(recorded)).toBe(true);
        expect(recorded).toMatchObject({ errors: [expect.objectContaining({ pointer: '/id' })] });
        expect(isSwitchboardError(recorded, 'SB_STORE_UNAVAILABLE')).toBe(false);

        const claimed = await store.claim({ ...longSource, owner: 'w', leaseMs: LEASE }).catch((e: unknown) => e);
        expect(isRefused(claimed)).toBe(true);
        expect(claimed).toMatchObject({ errors: [expect.objectContaining({ pointer: '/source' })] });

        const batch = await store
          .claimBatch([
            { ...ok, owner: 'w', leaseMs: LEASE },
            { ...longSource, owner: 'w', leaseMs: LEASE },
          ])
          .catch((e: unknown) => e);
        expect(isRefused(batch)).toBe(true);
        if (store.recordAndClaim !== undefined) {
          const both = await store
            .recordAndClaim([{ ...ok, state: 'received' }], [{ ...longId, owner: 'w', leaseMs: LEASE }])
            .catch((e: unknown) => e);
          expect(isRefused(both)).toBe(true);
        }
        expect(await store.get(ok)).toBeUndefined();
        expect((await store.list({ group: g })).items).toEqual([]);
        expect((await store.claim({ ...ok, owner: 'w', leaseMs: LEASE })).outcome).toBe('claimed');
      });

      if ((features.unholdable ?? []).length > 0) {
        it(`refuses values the engine cannot hold with the permanent SB_STORE_REFUSED: ${(features.unholdable ?? []).map((u) => u.label).join('; ')}`, async () => {
          for (const { label, update } of features.unholdable ?? []) {
            const g = group();
            const ok = at(g, newMessageId());
            const bad: ReceiptUpdate = { ...at(g, newMessageId()), state: 'processed', attempt: 1, ...update };
            const error = await store.record([{ ...ok, state: 'processed', attempt: 1 }, bad]).catch((e: unknown) => e);
            expect({ label, refused: isRefused(error) }).toEqual({ label, refused: true });
            expect({ label, written: await store.get(ok) }).toEqual({ label, written: undefined });
            const claimed = await store.claim({ ...bad, owner: 'w', leaseMs: LEASE }).catch((e: unknown) => e);
            const keyChanged = update.group !== undefined || update.source !== undefined || update.messageId !== undefined;
            if (keyChanged) expect({ label, refused: isRefused(claimed) }).toEqual({ label, refused: true });
            expect(await store.record([{ ...ok, state: 'processed', attempt: 1 }])).toEqual(['created']);
          }
        });
      }
    });

    describe('inbox (claim)', () => {
      it('claims once, answers in-progress while the lease holds, and lets a redelivery claim after it ran out', async () => {
        const g = group();
        const id = newMessageId();
        const first = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: 1000 });
        expect(first.outcome).toBe('claimed');
        clock.advance(400);
        const second = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w2', leaseMs: 1000 });
        expect(second.outcome).toBe('in-progress');
        if (second.outcome === 'in-progress') expect(second.retryAfterMs).toBe(600);
        expect((await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: 1000 })).outcome).toBe('in-progress');

        clock.advance(601);
        const third = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w2', leaseMs: 1000 });
        expect(third.outcome).toBe('claimed');
        expect(third.receipt).toMatchObject({ attempts: 2, leaseOwner: 'w2' });
      });

      it('answers duplicate-processed after processed, without changing the record', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: LEASE });
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processed', attempt: 1, result: 'done' }]);
        const before = await store.get(at(g, id));
        clock.advance(5);
        const dup = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w2', leaseMs: LEASE });
        expect(dup.outcome).toBe('duplicate-processed');
        expect(dup.receipt).toEqual(before);
        expect(await store.get(at(g, id))).toEqual(before);
      });

      it('lets a failed message be claimed again with the next attempt number', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: LEASE });
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'failed', attempt: 1, error: problem('retry me') }]);
        const again = await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: LEASE });
        expect(again.outcome).toBe('claimed');
        expect(again.receipt).toMatchObject({ state: 'processing', attempts: 2 });
      });

      it('lets exactly one of many concurrent claimers win', async () => {
        const g = group();
        const ids = Array.from({ length: 5 }, () => newMessageId());
        const handles = harness.second === undefined ? [store] : [store, harness.second];
        const claims = ids.flatMap((id) =>
          Array.from({ length: 12 }, (_, i) =>
            (handles[i % handles.length] as ReceiptStore).claim({
              group: g,
              source: SOURCE,
              messageId: id,
              owner: `w${i}`,
              leaseMs: LEASE,
            }),
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
          { group: g, source: SOURCE, messageId: done, state: 'processed', attempt: 1 },
          { group: g, source: SOURCE, messageId: dead, state: 'dead-lettered', attempt: 2, error: problem('dead') },
        ]);
        const results = await store.claimBatch([
          { group: g, source: SOURCE, messageId: fresh, owner: 'w', leaseMs: LEASE, type: 't.fresh' },
          { group: g, source: SOURCE, messageId: done, owner: 'w', leaseMs: LEASE },
          { group: g, source: SOURCE, messageId: fresh, owner: 'w', leaseMs: LEASE },
          { group: g, source: SOURCE, messageId: dead, owner: 'w', leaseMs: LEASE },
        ]);
        expect(results.map((r) => r.outcome)).toEqual(['claimed', 'duplicate-processed', 'in-progress', 'dead-lettered']);
        expect((await store.get(at(g, fresh)))?.type).toBe('t.fresh');
      });

      it('extends a lease only for its owner', async () => {
        const g = group();
        const id = newMessageId();
        await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w1', leaseMs: 1000 });
        clock.advance(900);
        expect(await store.extendLease({ group: g, source: SOURCE, messageId: id }, 'w2', 5000)).toBe(false);
        expect(await store.extendLease({ group: g, source: SOURCE, messageId: id }, 'w1', 5000)).toBe(true);
        expect((await store.get(at(g, id)))?.leaseUntil).toBe(clock.now() + 5000);
        clock.advance(1000);
        expect((await store.claim({ group: g, source: SOURCE, messageId: id, owner: 'w2', leaseMs: 1000 })).outcome).toBe('in-progress');
        await store.record([{ group: g, source: SOURCE, messageId: id, state: 'processed', attempt: 1 }]);
        expect(await store.extendLease({ group: g, source: SOURCE, messageId: id }, 'w1', 5000)).toBe(false);
      });
    });

    describe('batching', () => {
      it('applies a large batch of updates in order and reports each outcome', async () => {
        const g = group();
        const ids = Array.from({ length: 300 }, () => newMessageId());
        const updates: ReceiptUpdate[] = ids.flatMap((id) => [
          { group: g, source: SOURCE, messageId: id, state: 'received' as const, type: 'bulk' },
          { group: g, source: SOURCE, messageId: id, state: 'processing' as const, attempt: 1 },
          { group: g, source: SOURCE, messageId: id, state: 'processed' as const, attempt: 1 },
          { group: g, source: SOURCE, messageId: id, state: 'processing' as const, attempt: 1 },
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
          { group: g, source: SOURCE, messageId: done, owner: 'w', leaseMs: LEASE },
          { group: g, source: SOURCE, messageId: again, owner: 'w', leaseMs: LEASE },
        ]);
        const { outcomes, claims } = await store.recordAndClaim(
          [
            { group: g, source: SOURCE, messageId: done, state: 'processed', attempt: 1, result: 'ok' },
            { group: g, source: SOURCE, messageId: again, state: 'failed', attempt: 1, error: problem('boom') },
          ],
          [
            { group: g, source: SOURCE, messageId: next, owner: 'w', leaseMs: LEASE, type: 't.next' },
            { group: g, source: SOURCE, messageId: done, owner: 'w', leaseMs: LEASE },
            { group: g, source: SOURCE, messageId: again, owner: 'w', leaseMs: LEASE },
          ],
        );
        expect(outcomes).toEqual(['updated', 'updated']);
        expect(claims.map((c) => c.outcome)).toEqual(['claimed', 'duplicate-processed', 'claimed']);
        expect(claims[2]?.outcome === 'claimed' && claims[2].receipt.attempts).toBe(2);
        expect(await store.get(at(g, done))).toMatchObject({ state: 'processed', result: 'ok' });
        expect(await store.get(at(g, next))).toMatchObject({ state: 'processing', type: 't.next', leaseOwner: 'w' });
        expect(await store.get(at(g, again))).toMatchObject({ state: 'processing', attempts: 2 });
      });
    });

    describe('queries', () => {
      it('lists by group, state, type and time, paging without gaps or repeats', async () => {
        const g = group();
        const ids: string[] = [];
        for (let i = 0; i < 7; i++) {
          const id = newMessageId();
          ids.push(id);
          await store.record([
            { group: g, source: SOURCE, messageId: id, state: 'received', type: i % 2 === 0 ? 'even' : 'odd', topic: 'list' },
          ]);
          clock.advance(10);
        }
        await store.record([{ group: group(), source: SOURCE, messageId: newMessageId(), state: 'received', type: 'even' }]);
        await store.record([{ group: g, source: SOURCE, messageId: ids[1] as string, state: 'processed', attempt: 1 }]);

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
        const first = (await store.get(at(g, ids[0] as string)))?.receivedAt ?? 0;
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
          { group: g, source: SOURCE, messageId: oldDone, state: 'processed', attempt: 1 },
          { group: g, source: SOURCE, messageId: oldFailed, state: 'failed', attempt: 1, error: problem('old') },
        ]);
        clock.advance(60_000);
        const cutoff = clock.now();
        await store.record([{ group: g, source: SOURCE, messageId: fresh, state: 'processed', attempt: 1 }]);

        expect(await store.purge(cutoff, { states: ['processed'] })).toBe(1);
        expect(await store.get(at(g, oldDone))).toBeUndefined();
        expect((await store.get(at(g, oldFailed)))?.state).toBe('failed');
        expect(await store.purge(cutoff)).toBe(1);
        expect(await store.get(at(g, oldFailed))).toBeUndefined();
        expect((await store.get(at(g, fresh)))?.state).toBe('processed');
        expect(await store.purge(cutoff, { states: [] })).toBe(0);

        // After purge the inbox forgets: a very late duplicate is claimed as new.
        expect((await store.claim({ group: g, source: SOURCE, messageId: oldDone, owner: 'w', leaseMs: LEASE })).outcome).toBe('claimed');
      });
    });

    describe('lifecycle', () => {
      it('rejects calls after close with SB_CLOSED', async () => {
        await store.close();
        await expect(store.get(at(group(), newMessageId()))).rejects.toSatisfy((e: unknown) => isSwitchboardError(e, 'SB_CLOSED'));
      });
    });
  });
}
