import {
  type Broker,
  type BrokerCapabilities,
  type CloudEventsBinding,
  cloudEventsBindings,
  createOutboxRelay,
  isSwitchboardError,
  type OutboxMessage,
  type OutboxRelay,
  type OutboxStore,
  type OutgoingMessage,
  SwitchboardError,
} from '@switchboard/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomName, testMessage, waitFor } from './broker-helpers.js';
import { type TestClock, testClock } from './store-clock.js';

export interface OutboxHarness {
  /** The relay side of the outbox under test. */
  readonly store: OutboxStore;
  /** Another handle on the same outbox (another connection), where the engine has one. */
  readonly second?: OutboxStore;
  /**
   * Runs one application transaction: writes an application row `tag`, enqueues `messages` through
   * the engine's transactional `enqueue`, then commits — or rolls back when `rollback` is set, or
   * when `enqueue` throws (the error is rethrown).
   */
  transact(tag: string, messages: readonly OutboxMessage[], options?: { readonly rollback?: boolean }): Promise<void>;
  /** Tags of the application rows that committed, in insertion order. */
  appRows(): Promise<string[]>;
  /** Removes what the harness created. The suite closes the stores itself. */
  teardown?(): Promise<void>;
}

export type OutboxFactory = (options: { readonly clock: () => number }) => OutboxHarness | Promise<OutboxHarness>;

/**
 * A broker that only publishes: it records every confirmed `publishBatch` in call order, and can be
 * told to reject the next calls (an unreachable broker). For outbox and publisher tests.
 */
export class PublishRecordingBroker implements Broker {
  readonly name = 'recording';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities = {
    persistent: false,
    multiProcess: false,
    ordering: 'per-topic',
    delayedRedelivery: false,
    publishDeduplication: false,
    maxMessageBytes: 1024 * 1024,
  };
  /** Confirmed batches, in the order `publishBatch` was called. */
  readonly batches: OutgoingMessage[][] = [];
  /** What happened, in order: `declare <topic> <group>` and `publish <id>` lines. */
  readonly log: string[] = [];
  /** Calls that were rejected. */
  rejected = 0;
  #failures = 0;

  /** Makes the next `count` publish calls reject with `SB_BROKER_UNAVAILABLE`. */
  failNext(count: number): void {
    this.#failures = count;
  }

  /** Every confirmed message, in publish order. */
  get published(): OutgoingMessage[] {
    return this.batches.flat();
  }

  async publish(message: OutgoingMessage): Promise<void> {
    await this.publishBatch([message]);
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    if (this.#failures > 0) {
      this.#failures--;
      this.rejected++;
      throw new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: 'recording broker told to fail' });
    }
    this.batches.push(messages.map((m) => ({ ...m, headers: { ...m.headers }, body: m.body.slice() })));
    for (const m of messages) this.log.push(`publish ${m.id}`);
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.log.push(`declare ${topic} ${group}`);
  }

  subscribe(): never {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the recording broker does not deliver' });
  }

  async close(): Promise<void> {}
}

function message(topic: string, n: number, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return testMessage(topic, {
    headers: { 'ce-type': 'test.outbox', 'x-n': String(n), 'x-unicode': 'ünï ✓' },
    body: Uint8Array.from([n & 0xff, 0, 255, 10, 13]),
    ...extra,
  });
}

function same(received: readonly OutgoingMessage[], sent: readonly OutgoingMessage[]): void {
  expect(received.map((m) => m.id)).toEqual(sent.map((m) => m.id));
  for (const [i, m] of received.entries()) {
    const original = sent[i] as OutgoingMessage;
    expect(m.topic).toBe(original.topic);
    expect(m.headers).toEqual(original.headers);
    expect(Array.from(m.body)).toEqual(Array.from(original.body));
    expect(m.key).toBe(original.key);
  }
}

/**
 * The behaviour every transactional outbox must have, driven through `createOutboxRelay`:
 * atomicity with the application's transaction, order, confirm-before-mark, no double publishing by
 * concurrent relays, lease takeover.
 */
export function describeOutboxConformance(name: string, factory: OutboxFactory): void {
  describe(`Outbox conformance: ${name}`, () => {
    let clock: TestClock;
    let harness: OutboxHarness;
    let store: OutboxStore;
    let broker: PublishRecordingBroker;
    const relays: OutboxRelay[] = [];

    function relay(options: { store?: OutboxStore; batchSize?: number; pollIntervalMs?: number; owner?: string } = {}): OutboxRelay {
      const created = createOutboxRelay({
        store: options.store ?? store,
        broker,
        batchSize: options.batchSize ?? 100,
        pollIntervalMs: options.pollIntervalMs ?? 10,
        leaseMs: 60_000,
        retryBaseMs: 5,
        retryMaxMs: 20,
        ...(options.owner === undefined ? {} : { owner: options.owner }),
      });
      relays.push(created);
      return created;
    }

    async function drain(r: OutboxRelay): Promise<number> {
      let total = 0;
      for (;;) {
        const n = await r.runOnce();
        if (n === 0) return total;
        total += n;
      }
    }

    beforeEach(async () => {
      clock = testClock();
      harness = await factory({ clock: clock.now });
      store = harness.store;
      broker = new PublishRecordingBroker();
    });

    afterEach(async () => {
      for (const r of relays.splice(0)) await r.stop();
      await harness.second?.close();
      await store.close();
      await harness.teardown?.();
    });

    it('publishes nothing from a rolled-back transaction, and the messages of a committed one', async () => {
      const topic = randomName('atomic');
      const lost = [message(topic, 1), message(topic, 2)];
      const kept = [message(topic, 3)];
      await harness.transact('rolled-back', lost, { rollback: true });
      await harness.transact('committed', kept);
      expect(await harness.appRows()).toEqual(['committed']);
      expect(await store.pendingCount()).toBe(1);
      expect(await drain(relay())).toBe(1);
      same(broker.published, kept);
      expect(await store.pendingCount()).toBe(0);
    });

    it('refuses an invalid message inside the transaction, so nothing of it commits', async () => {
      const topic = randomName('invalid');
      const bad = { ...message(topic, 2), id: '' };
      const error = await harness.transact('bad', [message(topic, 1), bad]).catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_BAD_REQUEST')).toBe(true);
      expect(await harness.appRows()).toEqual([]);
      expect(await store.pendingCount()).toBe(0);
    });

    it('keeps MessageId, topic, headers, body and key, in insertion order across transactions and batches', async () => {
      const [a, b] = [randomName('order-a'), randomName('order-b')];
      const sent: OutgoingMessage[] = [];
      const transactions = [5, 1, 4, 3];
      for (const [t, size] of transactions.entries()) {
        const batch = Array.from({ length: size }, (_, i) =>
          message(i % 2 === 0 ? a : b, t * 10 + i, i % 3 === 0 ? { key: `customer-${i}` } : {}),
        );
        sent.push(...batch);
        await harness.transact(`tx-${t}`, batch);
      }
      expect(await drain(relay({ batchSize: 3 }))).toBe(sent.length);
      expect(broker.batches.every((batch) => batch.length <= 3)).toBe(true);
      same(broker.published, sent);
      for (const topic of [a, b]) {
        same(
          broker.published.filter((m) => m.topic === topic),
          sent.filter((m) => m.topic === topic),
        );
      }
      expect(await store.pendingCount()).toBe(0);
    });

    it('marks entries sent only after the broker confirmed them; a failed publish is retried first', async () => {
      const topic = randomName('confirm');
      const first = [message(topic, 1), message(topic, 2)];
      const later = [message(topic, 3)];
      await harness.transact('first', first);
      const r = relay({ batchSize: 2 });
      broker.failNext(1);
      const error = await r.runOnce().catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_BROKER_UNAVAILABLE')).toBe(true);
      expect(broker.published).toEqual([]);
      expect(await store.pendingCount()).toBe(2);

      await harness.transact('later', later);
      const claimed = await store.claim({ owner: 'inspector', limit: 10, leaseMs: 1000 });
      expect(claimed.map((e) => e.message.id)).toEqual([...first, ...later].map((m) => m.id));
      expect(claimed.map((e) => e.attempts)).toEqual([2, 2, 1]);
      expect(
        await store.release(
          claimed.map((e) => e.seq),
          'inspector',
        ),
      ).toBe(3);

      expect(await drain(r)).toBe(3);
      same(broker.published, [...first, ...later]);
      expect(await store.pendingCount()).toBe(0);
    });

    it('keeps retrying in the background through broker failures, in order, reporting each failure', async () => {
      const topic = randomName('retry');
      const sent = Array.from({ length: 6 }, (_, i) => message(topic, i));
      await harness.transact('one', sent.slice(0, 3));
      await harness.transact('two', sent.slice(3));
      const errors: string[] = [];
      broker.failNext(3);
      const r = createOutboxRelay({
        store,
        broker,
        batchSize: 2,
        pollIntervalMs: 10,
        retryBaseMs: 2,
        retryMaxMs: 10,
        onError: (e) => errors.push(e.code),
      });
      relays.push(r);
      r.start();
      await waitFor(() => broker.published.length >= sent.length, 'every message confirmed');
      await r.stop();
      same(broker.published, sent);
      expect(errors).toEqual(['SB_BROKER_UNAVAILABLE', 'SB_BROKER_UNAVAILABLE', 'SB_BROKER_UNAVAILABLE']);
      expect(await store.pendingCount()).toBe(0);
    });

    it('lets two running relays publish every message exactly once, in commit order', async () => {
      const topic = randomName('two-relays');
      const second = harness.second ?? store;
      const a = relay({ batchSize: 7, pollIntervalMs: 5, owner: 'relay-a' });
      const b = relay({ store: second, batchSize: 7, pollIntervalMs: 5, owner: 'relay-b' });
      a.start();
      b.start();
      const sent: OutgoingMessage[] = [];
      for (let t = 0; t < 20; t++) {
        const batch = Array.from({ length: 5 }, (_, i) => message(topic, t * 5 + i));
        sent.push(...batch);
        await harness.transact(`tx-${t}`, batch);
      }
      await waitFor(() => broker.published.length >= sent.length, `${sent.length} messages published`);
      await Promise.all([a.stop(), b.stop()]);
      same(broker.published, sent);
      expect(await store.pendingCount()).toBe(0);
    });

    it('stops a claim at entries leased to another relay and hands them over when the lease runs out', async () => {
      const topic = randomName('lease');
      const sent = [message(topic, 1), message(topic, 2), message(topic, 3)];
      await harness.transact('tx', sent);
      const other = harness.second ?? store;

      const dead = await store.claim({ owner: 'dead-relay', limit: 2, leaseMs: 1000 });
      expect(dead.map((e) => e.message.id)).toEqual(sent.slice(0, 2).map((m) => m.id));
      expect(dead.map((e) => e.attempts)).toEqual([1, 1]);
      expect(dead[0]?.seq).toBeLessThan(dead[1]?.seq ?? 0);
      expect(await other.claim({ owner: 'live-relay', limit: 10, leaseMs: 1000 })).toEqual([]);
      clock.advance(999);
      expect(await other.claim({ owner: 'live-relay', limit: 10, leaseMs: 1000 })).toEqual([]);
      clock.advance(1);

      const takeover = await other.claim({ owner: 'live-relay', limit: 10, leaseMs: 1000 });
      expect(takeover.map((e) => e.message.id)).toEqual(sent.map((m) => m.id));
      expect(takeover.map((e) => e.attempts)).toEqual([2, 2, 1]);
      same(
        takeover.map((e) => e.message),
        sent,
      );
      const seqs = takeover.map((e) => e.seq);
      expect(await store.markSent(seqs, 'dead-relay')).toBe(0);
      expect(await store.release(seqs, 'dead-relay')).toBe(0);
      expect(await other.markSent(seqs, 'live-relay')).toBe(3);
      expect(await other.markSent(seqs, 'live-relay')).toBe(0);
      expect(await store.claim({ owner: 'anyone', limit: 10, leaseMs: 1000 })).toEqual([]);
      expect(await store.pendingCount()).toBe(0);
    });

    it("declares a message's receiver group before publishing it (once per relay), and publishes it without the field", async () => {
      const topic = randomName('receiver');
      const first = { ...message(topic, 1), receiverGroup: 'service-b' };
      const second = { ...message(topic, 2), receiverGroup: 'service-b' };
      const plain = message(topic, 3);
      await harness.transact('receivers', [first, second, plain]);
      expect(await drain(relay())).toBe(3);
      expect(broker.log).toEqual([`declare ${topic} service-b`, `publish ${first.id}`, `publish ${second.id}`, `publish ${plain.id}`]);
      for (const published of broker.published) expect(published).not.toHaveProperty('receiverGroup');
    });

    it('purges sent entries older than the cutoff and keeps unsent ones', async () => {
      const topic = randomName('purge');
      await harness.transact('old', [message(topic, 1), message(topic, 2)]);
      expect(await drain(relay())).toBe(2);
      clock.advance(10_000);
      const cutoff = clock.now();
      await harness.transact('new', [message(topic, 3)]);
      expect(await store.purgeSent(cutoff)).toBe(2);
      expect(await store.purgeSent(cutoff)).toBe(0);
      expect(await store.pendingCount()).toBe(1);
    });

    it('wakes an idle relay when a transaction commits, without waiting for its poll', async () => {
      if (store.onEnqueued === undefined) return;
      const topic = randomName('wake');
      const r = relay({ pollIntervalMs: 600_000 });
      r.start();
      // The first (empty) claim has run once the relay is idle; the poll alone would take ten minutes.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const sent = [message(topic, 1)];
      await harness.transact('wake', sent);
      await waitFor(() => broker.published.length === 1, 'the relay to be woken by the commit');
      same(broker.published, sent);
    });

    it('rejects calls after close with SB_CLOSED', async () => {
      await store.close();
      await expect(store.claim({ owner: 'r', limit: 1, leaseMs: 1000 })).rejects.toSatisfy((e: unknown) =>
        isSwitchboardError(e, 'SB_CLOSED'),
      );
    });
  });
}
