import { randomBytes } from 'node:crypto';
import { type DeadLetterStore, isSwitchboardError, type NewDeadLetter, newMessageId, type ProblemDetails } from '@switchboard/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestClock, testClock } from './store-clock.js';

export interface DeadLetterStoreHarness {
  readonly store: DeadLetterStore;
  /** Another handle on the same storage (another connection or process), where the engine has one. */
  readonly second?: DeadLetterStore;
  teardown?(): Promise<void>;
}

export type DeadLetterStoreFactory = (options: {
  readonly clock: () => number;
}) => DeadLetterStoreHarness | Promise<DeadLetterStoreHarness>;

function problem(detail: string): ProblemDetails {
  return { type: 'urn:switchboard:error:handler-failed', title: 'Handler failed', status: 500, code: 'SB_HANDLER_FAILED', detail };
}

function name(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

function letter(overrides: Partial<NewDeadLetter> = {}): NewDeadLetter {
  return {
    messageId: newMessageId(),
    topic: 'orders',
    group: 'billing',
    type: 'order.placed',
    headers: { 'ce-id': 'x', 'ce-type': 'order.placed', 'content-type': 'application/json; charset=utf-8' },
    body: new TextEncoder().encode('{"order":1}'),
    reason: 'max-attempts',
    detail: 'failed 3 times',
    attempts: [
      { attempt: 1, at: 1, error: problem('one') },
      { attempt: 2, at: 2, error: problem('two') },
    ],
    ...overrides,
  };
}

/** The behaviour every `DeadLetterStore` must have. */
export function describeDeadLetterStoreConformance(label: string, factory: DeadLetterStoreFactory): void {
  describe(`DeadLetterStore conformance: ${label}`, () => {
    let clock: TestClock;
    let harness: DeadLetterStoreHarness;
    let store: DeadLetterStore;

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

    it('keeps headers and body bytes exactly, with reason, detail and attempt history', async () => {
      const body = Uint8Array.from([0, 255, 1, 254, 0x80, 0xc3, 0x28, 10]);
      const headers = { 'ce-id': 'id-1', 'x-weird': '  spaced  ', 'x-unicode': 'ünï ✓' };
      const added = await store.add(
        letter({
          body,
          headers,
          key: 'customer-7',
          reason: 'permanent',
          attempts: [
            { attempt: 2, at: 20, error: problem('second') },
            { attempt: 1, at: 10, error: problem('first') },
          ],
        }),
      );
      expect(added).toMatchObject({ status: 'pending', replayCount: 0, size: 8, reason: 'permanent', key: 'customer-7' });
      expect(added.deadLetteredAt).toBe(clock.now());
      const got = await store.get(added.id);
      expect(got).toBeDefined();
      expect(Array.from(got?.body ?? [])).toEqual(Array.from(body));
      expect(got?.headers).toEqual(headers);
      expect(got?.attempts.map((a) => a.attempt)).toEqual([1, 2]);
      expect(got?.attempts[0]?.error).toEqual(problem('first'));
      expect(got).toMatchObject({ topic: 'orders', group: 'billing', type: 'order.placed', detail: 'failed 3 times' });
      body[0] = 42;
      expect((await store.get(added.id))?.body[0]).toBe(0);
    });

    it('answers undefined for an unknown id and 0 for removing it', async () => {
      expect(await store.get(newMessageId())).toBeUndefined();
      expect(await store.remove([newMessageId()])).toBe(0);
    });

    it('adds the same (group, MessageId) once, merging attempts; another group gets its own entry', async () => {
      const messageId = newMessageId();
      const first = await store.add(letter({ messageId }));
      const again = await store.add(letter({ messageId, attempts: [{ attempt: 3, at: 3, error: problem('three') }] }));
      expect(again.id).toBe(first.id);
      expect(again.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      const other = await store.add(letter({ messageId, group: 'shipping' }));
      expect(other.id).not.toBe(first.id);
      expect((await store.list({ messageId })).items).toHaveLength(2);
    });

    it('adds a batch in order', async () => {
      const topic = name('batch');
      const entries = Array.from({ length: 50 }, (_, i) => letter({ topic, deadLetteredAt: clock.now() + i }));
      const added = await store.addBatch(entries);
      expect(added.map((e) => e.messageId)).toEqual(entries.map((e) => e.messageId));
      const page = await store.list({ topic, limit: 100 });
      expect(page.items.map((e) => e.messageId)).toEqual(entries.map((e) => e.messageId));
    });

    it('filters by topic, group, type, reason and time, and pages in order without the bytes', async () => {
      const topic = name('filter');
      const t0 = clock.now();
      const made = [
        letter({ topic, group: 'g1', type: 'a', reason: 'max-attempts', deadLetteredAt: t0 }),
        letter({ topic, group: 'g1', type: 'b', reason: 'permanent', deadLetteredAt: t0 + 10 }),
        letter({ topic, group: 'g2', type: 'a', reason: 'invalid', deadLetteredAt: t0 + 20 }),
        letter({ topic, group: 'g2', type: 'a', reason: 'max-attempts', deadLetteredAt: t0 + 30 }),
        letter({ topic, group: 'g1', type: 'a', reason: 'not-cloudevent', deadLetteredAt: t0 + 40 }),
      ];
      for (const entry of [...made].reverse()) await store.add(entry);
      await store.add(letter({ topic: name('elsewhere') }));

      const ids = (items: readonly { messageId: string }[]) => items.map((e) => e.messageId);
      expect(ids((await store.list({ topic })).items)).toEqual(ids(made));
      expect(ids((await store.list({ topic, group: 'g1' })).items)).toEqual(ids([made[0], made[1], made[4]] as NewDeadLetter[]));
      expect(ids((await store.list({ topic, type: 'a', group: 'g2' })).items)).toEqual(ids([made[2], made[3]] as NewDeadLetter[]));
      expect(ids((await store.list({ topic, reason: 'max-attempts' })).items)).toEqual(ids([made[0], made[3]] as NewDeadLetter[]));
      expect(ids((await store.list({ topic, from: t0 + 10, to: t0 + 40 })).items)).toEqual(ids(made.slice(1, 4)));

      const first = await store.list({ topic, limit: 2 });
      expect(first.items).toHaveLength(2);
      expect(first.items[0]).not.toHaveProperty('body');
      expect(first.items[0]).not.toHaveProperty('headers');
      expect(first.items[0]?.size).toBe(11);
      const second = await store.list({ topic, limit: 2, ...(first.nextCursor === undefined ? {} : { cursor: first.nextCursor }) });
      const third = await store.list({ topic, limit: 2, ...(second.nextCursor === undefined ? {} : { cursor: second.nextCursor }) });
      expect(third.nextCursor).toBeUndefined();
      expect([...first.items, ...second.items, ...third.items].map((e) => e.messageId)).toEqual(ids(made));
      await expect(store.list({ cursor: '!!' })).rejects.toSatisfy((e: unknown) => isSwitchboardError(e, 'SB_BAD_REQUEST'));
    });

    it('hands each entry to one replayer at a time and never takes replayed entries', async () => {
      const topic = name('replay');
      for (let i = 0; i < 5; i++) await store.add(letter({ topic, deadLetteredAt: clock.now() + i }));
      const other = harness.second ?? store;
      const [a, b] = await Promise.all([
        store.take({ topic, owner: 'r1', leaseMs: 1000, limit: 3 }),
        other.take({ topic, owner: 'r2', leaseMs: 1000, limit: 3 }),
      ]);
      const taken = [...a, ...b].map((e) => e.id);
      expect(taken).toHaveLength(5);
      expect(new Set(taken).size).toBe(5);
      expect(await store.take({ topic, owner: 'r3', leaseMs: 1000 })).toEqual([]);
      expect((await store.list({ topic, status: 'replaying' })).items).toHaveLength(5);
      expect(a[0]?.body).toBeInstanceOf(Uint8Array);
      expect(a[0]?.replayOwner).toBe('r1');

      const aIds = a.map((e) => e.id);
      expect(await store.markReplayed(aIds, 'r2')).toBe(0);
      expect(await store.markReplayed(aIds, 'r1')).toBe(aIds.length);
      const replayed = await store.get(aIds[0] as string);
      expect(replayed).toMatchObject({ status: 'replayed', replayCount: 1, replayedAt: clock.now() });

      const bIds = b.map((e) => e.id);
      expect(await store.release(bIds, 'r2')).toBe(bIds.length);
      expect((await store.list({ topic, status: 'pending' })).items.map((e) => e.id)).toEqual(bIds);
      const again = await store.take({ topic, owner: 'r4', leaseMs: 1000 });
      expect(again.map((e) => e.id)).toEqual(bIds);
      expect(again.every((e) => e.status === 'replaying')).toBe(true);
    });

    it('gives entries back when a replayer lease runs out', async () => {
      const topic = name('lease');
      const entry = await store.add(letter({ topic }));
      expect(await store.take({ topic, owner: 'dead-replayer', leaseMs: 500 })).toHaveLength(1);
      clock.advance(499);
      expect(await store.take({ topic, owner: 'r2', leaseMs: 500 })).toEqual([]);
      clock.advance(1);
      expect((await store.get(entry.id))?.status).toBe('pending');
      const retaken = await store.take({ topic, owner: 'r2', leaseMs: 500 });
      expect(retaken.map((e) => e.id)).toEqual([entry.id]);
      expect(await store.markReplayed([entry.id], 'dead-replayer')).toBe(0);
      expect(await store.markReplayed([entry.id], 'r2')).toBe(1);
    });

    it('takes exactly the requested ids (single replay)', async () => {
      const topic = name('single');
      const entries = [];
      for (let i = 0; i < 3; i++) entries.push(await store.add(letter({ topic })));
      const wanted = entries[1]?.id as string;
      const taken = await store.take({ topic, ids: [wanted], owner: 'r', leaseMs: 1000 });
      expect(taken.map((e) => e.id)).toEqual([wanted]);
      expect(await store.take({ ids: [wanted], owner: 'r2', leaseMs: 1000 })).toEqual([]);
    });

    it('adds a new entry when a replayed message fails again', async () => {
      const messageId = newMessageId();
      const first = await store.add(letter({ messageId }));
      await store.take({ messageId, owner: 'r', leaseMs: 1000 });
      await store.markReplayed([first.id], 'r');
      const second = await store.add(letter({ messageId, reason: 'permanent' }));
      expect(second.id).not.toBe(first.id);
      expect(second.status).toBe('pending');
      expect((await store.list({ messageId })).items.map((e) => e.status)).toEqual(['replayed', 'pending']);
    });

    it('removes entries and purges old ones', async () => {
      const topic = name('purge');
      const t0 = clock.now();
      const oldReplayed = await store.add(letter({ topic, deadLetteredAt: t0 - 10_000 }));
      const oldPending = await store.add(letter({ topic, deadLetteredAt: t0 - 9_000 }));
      const fresh = await store.add(letter({ topic, deadLetteredAt: t0 }));
      await store.take({ ids: [oldReplayed.id], owner: 'r', leaseMs: 1000 });
      await store.markReplayed([oldReplayed.id], 'r');

      expect(await store.purge(t0 - 1, { onlyReplayed: true })).toBe(1);
      expect(await store.get(oldReplayed.id)).toBeUndefined();
      expect(await store.get(oldPending.id)).toBeDefined();
      expect(await store.purge(t0 - 1)).toBe(1);
      expect(await store.get(oldPending.id)).toBeUndefined();

      expect(await store.remove([fresh.id, fresh.id])).toBe(1);
      expect(await store.get(fresh.id)).toBeUndefined();
      expect((await store.list({ topic })).items).toEqual([]);
    });
  });
}
