import { randomBytes } from 'node:crypto';
import {
  CLOUDEVENT_ID_MAX_BYTES,
  CLOUDEVENT_SOURCE_MAX_BYTES,
  type DeadLetterStore,
  isSwitchboardError,
  type NewDeadLetter,
  newMessageId,
  type ProblemDetails,
} from '@switchboard/core';
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

/** What an engine declares about itself; cases that do not apply are not defined. */
export interface DeadLetterStoreFeatures {
  /**
   * Values this engine cannot hold although they are within the identity limits (a NUL byte on
   * PostgreSQL, a NUL in a Redis group or source). Each is laid over a valid entry and must be
   * refused with `SB_STORE_REFUSED`, the whole batch unwritten.
   */
  readonly unholdable?: readonly { readonly label: string; readonly entry: Partial<NewDeadLetter> }[];
}

const SOURCE = '/sources/a';
const OTHER = '/sources/b';

/** A string of exactly `bytes` UTF-8 bytes (two-byte characters), plus `extra` ASCII bytes. */
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

function name(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

function letter(overrides: Partial<NewDeadLetter> = {}): NewDeadLetter {
  return {
    messageId: newMessageId(),
    source: SOURCE,
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
export function describeDeadLetterStoreConformance(
  label: string,
  factory: DeadLetterStoreFactory,
  features: DeadLetterStoreFeatures = {},
): void {
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
      expect(got).toMatchObject({ source: SOURCE, topic: 'orders', group: 'billing', type: 'order.placed', detail: 'failed 3 times' });
      body[0] = 42;
      expect((await store.get(added.id))?.body[0]).toBe(0);
    });

    it('answers undefined for an unknown id and 0 for removing it', async () => {
      expect(await store.get(newMessageId())).toBeUndefined();
      expect(await store.remove([newMessageId()])).toBe(0);
    });

    it('adds the same (group, source, MessageId) once, merging attempts; another group gets its own entry', async () => {
      const messageId = newMessageId();
      const first = await store.add(letter({ messageId }));
      const again = await store.add(letter({ messageId, attempts: [{ attempt: 3, at: 3, error: problem('three') }] }));
      expect(again.id).toBe(first.id);
      expect(again.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      const other = await store.add(letter({ messageId, group: 'shipping' }));
      expect(other.id).not.toBe(first.id);
      expect((await store.list({ messageId })).items).toHaveLength(2);
    });

    it('keeps the same MessageId from two sources as two entries, each added idempotently', async () => {
      const messageId = newMessageId();
      const a = await store.add(letter({ messageId }));
      const b = await store.add(letter({ messageId, source: OTHER, attempts: [{ attempt: 1, at: 1, error: problem('b one') }] }));
      expect(b.id).not.toBe(a.id);
      expect(b).toMatchObject({ messageId, source: OTHER });
      const [againA, againB] = await store.addBatch([
        letter({ messageId, attempts: [{ attempt: 3, at: 3, error: problem('a three') }] }),
        letter({ messageId, source: OTHER, attempts: [{ attempt: 2, at: 2, error: problem('b two') }] }),
      ]);
      expect(againA?.id).toBe(a.id);
      expect(againA?.attempts.map((x) => x.attempt)).toEqual([1, 2, 3]);
      expect(againB?.id).toBe(b.id);
      expect(againB?.attempts.map((x) => x.error.detail)).toEqual(['b one', 'b two']);

      const listed = (await store.list({ messageId })).items;
      expect(listed.map((e) => [e.id, e.source])).toEqual([
        [a.id, SOURCE],
        [b.id, OTHER],
      ]);
      expect((await store.list({ messageId, source: OTHER })).items.map((e) => e.id)).toEqual([b.id]);
      expect((await store.get(b.id))?.source).toBe(OTHER);

      // Replaying one source's entry leaves the other's active: a new failure of the first is a new entry.
      await store.take({ ids: [a.id], owner: 'r', leaseMs: 1000 });
      expect(await store.markReplayed([a.id], 'r')).toBe(1);
      const third = await store.add(letter({ messageId }));
      expect([third.id === a.id, third.id === b.id]).toEqual([false, false]);
      expect((await store.add(letter({ messageId, source: OTHER }))).id).toBe(b.id);
      expect((await store.take({ messageId, source: OTHER, owner: 'r2', leaseMs: 1000 })).map((e) => e.id)).toEqual([b.id]);
    });

    it('keeps bytes that are not a CloudEvent under the empty source', async () => {
      const topic = name('raw');
      const raw = await store.add(letter({ topic, source: '', messageId: `sha256:${'ab'.repeat(32)}`, reason: 'not-cloudevent' }));
      expect(raw.source).toBe('');
      expect((await store.add(letter({ topic, source: '', messageId: raw.messageId, reason: 'not-cloudevent' }))).id).toBe(raw.id);
      await store.add(letter({ topic, messageId: raw.messageId }));
      expect((await store.list({ topic, source: '' })).items.map((e) => e.id)).toEqual([raw.id]);
      expect((await store.list({ topic })).items).toHaveLength(2);
    });

    it('holds an id and a source of exactly the identity limits, and refuses longer ones with SB_STORE_REFUSED, writing nothing of the batch', async () => {
      const topic = name('limits');
      const atLimit = letter({
        topic,
        messageId: utf8Of(`${newMessageId()}-`, CLOUDEVENT_ID_MAX_BYTES),
        source: utf8Of('urn:test:', CLOUDEVENT_SOURCE_MAX_BYTES),
      });
      const held = await store.add(atLimit);
      expect((await store.get(held.id))?.messageId).toBe(atLimit.messageId);
      expect((await store.add(atLimit)).id).toBe(held.id);

      const longId = letter({ topic, messageId: utf8Of('', CLOUDEVENT_ID_MAX_BYTES, 1) });
      const longSource = letter({ topic, source: utf8Of('urn:test:', CLOUDEVENT_SOURCE_MAX_BYTES, 1) });
      const one = await store.add(longId).catch((e: unknown) => e);
      expect(isRefused(one)).toBe(true);
      expect(one).toMatchObject({ errors: [expect.objectContaining({ pointer: '/id' })] });
      const batch = await store.addBatch([letter({ topic }), longSource]).catch((e: unknown) => e);
      expect(isRefused(batch)).toBe(true);
      expect(batch).toMatchObject({ errors: [expect.objectContaining({ pointer: '/source' })] });
      expect((await store.list({ topic })).items.map((e) => e.id)).toEqual([held.id]);
    });

    if ((features.unholdable ?? []).length > 0) {
      it(`refuses values the engine cannot hold with the permanent SB_STORE_REFUSED: ${(features.unholdable ?? []).map((u) => u.label).join('; ')}`, async () => {
        for (const { label, entry } of features.unholdable ?? []) {
          const topic = name('unholdable');
          const error = await store.addBatch([letter({ topic }), letter({ topic, ...entry })]).catch((e: unknown) => e);
          expect({ label, refused: isRefused(error) }).toEqual({ label, refused: true });
          expect({ label, written: (await store.list({ topic })).items }).toEqual({ label, written: [] });
          expect((await store.add(letter({ topic }))).topic).toBe(topic);
        }
      });
    }

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
