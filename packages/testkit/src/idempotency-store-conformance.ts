import { randomBytes } from 'node:crypto';
import type { IdempotencyBegin, IdempotencyBounds, IdempotencyLock, IdempotencyStore, StoredResponse } from '@switchboard/core';
import { idempotencyScope } from '@switchboard/core/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestClock, testClock } from './store-clock.js';

export interface IdempotencyStoreHarness {
  readonly store: IdempotencyStore;
  /** Another handle on the same storage (another connection or process), where the engine has one. */
  readonly second?: IdempotencyStore;
  /** Removes what the harness created (files, tables, keys). The suite closes the stores itself. */
  teardown?(): Promise<void>;
}

export type IdempotencyStoreFactory = (
  options: { readonly clock: () => number } & IdempotencyBounds,
) => IdempotencyStoreHarness | Promise<IdempotencyStoreHarness>;

const LOCK = 30_000;
const TTL = 60_000;

function scope(): string {
  return idempotencyScope(`op-${randomBytes(4).toString('hex')}`, undefined);
}

function answer(body = '{"ok":true}', status = 200): StoredResponse {
  return { status, headers: { 'content-type': 'application/json', location: '/jobs/abc' }, body };
}

/** What a store can do beyond the common behaviour; cases for a feature run only where it is declared. */
export interface IdempotencyStoreFeatures {
  /** Several handles (processes, instances) share the records: the harness gives `second`. */
  readonly shared: boolean;
}

/**
 * The behaviour every `IdempotencyStore` must have (see `packages/core/src/idempotency.ts`). Call it
 * from the store's test file:
 * `describeIdempotencyStoreConformance('sqlite', ({ clock, maxEntries, maxBytes }) => ({ store: ... }))`.
 */
export function describeIdempotencyStoreConformance(
  name: string,
  factory: IdempotencyStoreFactory,
  features: IdempotencyStoreFeatures = { shared: false },
): void {
  describe(`IdempotencyStore conformance: ${name}`, () => {
    let clock: TestClock;
    const opened: IdempotencyStoreHarness[] = [];

    async function open(bounds: IdempotencyBounds = {}): Promise<IdempotencyStoreHarness> {
      const harness = await factory({ clock: clock.now, ...bounds });
      opened.push(harness);
      return harness;
    }

    async function started(store: IdempotencyStore, request: IdempotencyBegin): Promise<IdempotencyLock> {
      const begun = await store.begin(request);
      expect(begun.status).toBe('started');
      return { scope: request.scope, key: request.key, token: begun.status === 'started' ? begun.token : '' };
    }

    beforeEach(() => {
      clock = testClock();
    });

    afterEach(async () => {
      for (const harness of opened.splice(0)) {
        await harness.second?.close?.();
        await harness.store.close?.();
        await harness.teardown?.();
      }
    });

    it('starts a new key, answers in-progress for the same body and mismatch for another, then replays', async () => {
      const { store } = await open();
      const request = { scope: scope(), key: 'order-1', requestHash: 'a'.repeat(64), lockMs: LOCK };
      const lock = await started(store, request);
      expect(await store.begin(request)).toEqual({ status: 'in-progress' });
      expect(await store.begin({ ...request, requestHash: 'b'.repeat(64) })).toEqual({ status: 'mismatch' });
      await store.complete(lock, answer('{"id":7}', 201), TTL);
      expect(await store.begin(request)).toEqual({ status: 'replay', response: answer('{"id":7}', 201) });
      expect(await store.begin({ ...request, requestHash: 'b'.repeat(64) })).toEqual({ status: 'mismatch' });
    });

    it('keeps answers exactly: status, headers and a body with any characters', async () => {
      const { store } = await open();
      const request = { scope: scope(), key: 'exact', requestHash: 'c'.repeat(64), lockMs: LOCK };
      const lock = await started(store, request);
      const response: StoredResponse = {
        status: 422,
        headers: { 'content-type': 'application/problem+json', 'retry-after': '3' },
        body: '{"text":"naïve ✓ 𝄞 \\u0000 \'quotes\' \\"more\\""}',
      };
      await store.complete(lock, response, TTL);
      expect(await store.begin(request)).toEqual({ status: 'replay', response });
    });

    it('scopes keys: the same key of another scope (caller or operation) is another record', async () => {
      const { store } = await open();
      const key = 'shared-key';
      const alice = idempotencyScope('save', `alice-${randomBytes(3).toString('hex')}`);
      const bob = idempotencyScope('save', `bob-${randomBytes(3).toString('hex')}`);
      const lock = await started(store, { scope: alice, key, requestHash: 'a'.repeat(64), lockMs: LOCK });
      await started(store, { scope: bob, key, requestHash: 'b'.repeat(64), lockMs: LOCK });
      await store.complete(lock, answer('{"who":"alice"}'), TTL);
      expect(await store.begin({ scope: bob, key, requestHash: 'b'.repeat(64), lockMs: LOCK })).toEqual({ status: 'in-progress' });
    });

    it('lets exactly one of many concurrent begins start', async () => {
      const harness = await open();
      const stores = harness.second === undefined ? [harness.store] : [harness.store, harness.second];
      const request = { scope: scope(), key: 'race', requestHash: 'd'.repeat(64), lockMs: LOCK };
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => (stores[i % stores.length] as IdempotencyStore).begin(request)),
      );
      expect(results.filter((result) => result.status === 'started')).toHaveLength(1);
      expect(results.filter((result) => result.status === 'in-progress')).toHaveLength(11);
    });

    it('frees a key on abandon; a retry starts again', async () => {
      const { store } = await open();
      const request = { scope: scope(), key: 'abandon', requestHash: 'e'.repeat(64), lockMs: LOCK };
      const lock = await started(store, request);
      await store.abandon(lock);
      await started(store, request);
    });

    it('takes over a lock older than lockMs; the old owner can then neither complete nor abandon', async () => {
      const { store } = await open();
      const request = { scope: scope(), key: 'crashed', requestHash: 'f'.repeat(64), lockMs: 1_000 };
      const first = await started(store, request);
      clock.advance(999);
      expect(await store.begin(request)).toEqual({ status: 'in-progress' });
      clock.advance(1);
      const second = await started(store, request);
      expect(second.token).not.toBe(first.token);
      await store.complete(first, answer('{"stale":true}'), TTL);
      await store.abandon(first);
      expect(await store.begin(request)).toEqual({ status: 'in-progress' });
      await store.complete(second, answer('{"fresh":true}'), TTL);
      expect(await store.begin(request)).toEqual({ status: 'replay', response: answer('{"fresh":true}') });
    });

    it('forgets an answer ttlMs after completion', async () => {
      const { store } = await open();
      const request = { scope: scope(), key: 'ttl', requestHash: '1'.repeat(64), lockMs: LOCK };
      const lock = await started(store, request);
      clock.advance(10);
      await store.complete(lock, answer(), 5_000);
      clock.advance(4_999);
      expect((await store.begin(request)).status).toBe('replay');
      clock.advance(1);
      await started(store, { ...request, requestHash: '2'.repeat(64) });
    });

    it('is bounded by count: the oldest completed answer makes room for a new key', async () => {
      const { store } = await open({ maxEntries: 3 });
      const s = scope();
      const request = (key: string) => ({ scope: s, key, requestHash: '3'.repeat(64), lockMs: LOCK });
      // Completed in an order that is neither the keys' order nor distinguishable by the clock.
      for (const key of ['m', 'z', 'a']) await store.complete(await started(store, request(key)), answer(`"${key}"`), TTL);
      await started(store, request('d'));
      expect(await store.begin(request('z'))).toEqual({ status: 'replay', response: answer('"z"') });
      expect(await store.begin(request('a'))).toEqual({ status: 'replay', response: answer('"a"') });
      // `m`, completed first, was dropped: it starts again (and makes room by dropping `z`, the oldest left).
      await started(store, request('m'));
      await started(store, request('z'));
    });

    it('never drops a key in progress: when only those fill it, a new key is refused as full', async () => {
      const { store } = await open({ maxEntries: 2 });
      const s = scope();
      const request = (key: string) => ({ scope: s, key, requestHash: '4'.repeat(64), lockMs: 5_000 });
      const first = await started(store, request('a'));
      await started(store, request('b'));
      const refused = await store.begin(request('c'));
      expect(refused.status).toBe('full');
      expect(refused.status === 'full' ? refused.retryAfterMs : 0).toBeGreaterThan(0);
      expect(await store.begin(request('a'))).toEqual({ status: 'in-progress' });
      expect(await store.begin(request('b'))).toEqual({ status: 'in-progress' });
      // Completed, `a` can be dropped to make room.
      await store.complete(first, answer(), TTL);
      await started(store, request('c'));
      expect(await store.begin(request('b'))).toEqual({ status: 'in-progress' });
      // Locks that expired (their processes died) make room too.
      clock.advance(5_000);
      await started(store, request('d'));
    });

    it('is bounded by bytes, answers included', async () => {
      const { store } = await open({ maxBytes: 4_000 });
      const s = scope();
      const request = (key: string) => ({ scope: s, key, requestHash: '5'.repeat(64), lockMs: LOCK });
      const big = (n: number) => answer(`"${String(n).repeat(1_500)}"`);
      await store.complete(await started(store, request('a')), big(1), TTL);
      await store.complete(await started(store, request('b')), big(2), TTL);
      expect((await store.begin(request('a'))).status).toBe('replay');
      await store.complete(await started(store, request('c')), big(3), TTL);
      // Three answers of 1.5 kB do not fit in 4 kB: the oldest went.
      await started(store, request('a'));
      expect(await store.begin(request('c'))).toEqual({ status: 'replay', response: big(3) });
    });

    it('does not keep an answer larger than maxBytes: the key is released', async () => {
      const { store } = await open({ maxBytes: 2_000 });
      const request = { scope: scope(), key: 'huge', requestHash: '6'.repeat(64), lockMs: LOCK };
      const lock = await started(store, request);
      await store.complete(lock, answer(`"${'x'.repeat(5_000)}"`), TTL);
      await started(store, request);
    });

    if (features.shared) {
      it('shares keys between handles on the same storage', async () => {
        const harness = await open();
        const second = harness.second as IdempotencyStore;
        expect(second).toBeDefined();
        const request = { scope: scope(), key: 'shared', requestHash: '7'.repeat(64), lockMs: LOCK };
        const lock = await started(harness.store, request);
        expect(await second.begin(request)).toEqual({ status: 'in-progress' });
        await harness.store.complete(lock, answer('{"from":"first"}'), TTL);
        expect(await second.begin(request)).toEqual({ status: 'replay', response: answer('{"from":"first"}') });
      });
    }
  });
}
