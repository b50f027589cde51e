import type { Broker, BrokerCapabilities, Delivery, DeliveryGuarantee, OutgoingMessage } from '@switchboard/core';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { requestsOf } from '@switchboard/core/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, deferred, delay, randomName, testMessage, waitFor } from './broker-helpers.js';

/**
 * What the adapter under test declares, plus knobs for the suite. The capability fields must equal
 * `broker.capabilities` (the first test checks it), and the suite picks its assertions from them:
 * nothing is skipped, a broker without a capability is checked for the behaviour it declares instead.
 */
export interface BrokerFeatures extends Omit<BrokerCapabilities, 'delivery'> {
  /**
   * `at-least-once` (default) or `at-most-once`. An at-most-once broker is checked for what it
   * promises instead of redelivery: ack and nack are no-ops, nothing is redelivered (nack, failed
   * handler, ack timeout), nothing is kept for a group before it subscribes or across instances.
   */
  readonly delivery?: DeliveryGuarantee;
  /**
   * A short `ackTimeoutMs` the engine honours, used by the redelivery tests. Default 500.
   * Negative checks ("nothing more arrives") wait `quietMs`, default 2 × this (at least 200 ms).
   */
  readonly ackTimeoutMs?: number;
  readonly quietMs?: number;
  /** Delay given to `nack(delayMs)` in the delayed-redelivery test. Default 300. */
  readonly nackDelayMs?: number;
  /** Prepended to every random topic name (e.g. a subject or stream prefix the engine was set up with). */
  readonly topicPrefix?: string;
  /** Longest wait for an expected delivery. Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Messages in the throughput sanity test. Default 2 000. */
  readonly throughputMessages?: number;
  /**
   * The engine tells at once that nobody serves a request (NATS no-responders): such a request
   * must fail with `SB_NO_RESPONDERS` instead of waiting for its timeout. Default false.
   */
  readonly noResponders?: boolean;
  /**
   * The broker implements `pending` (queue depth): publish N to a declared group, consume none →
   * N; ack k of them → N − k; an unknown group → undefined. Default false: then `pending` must be absent.
   */
  readonly pending?: boolean;
}

const KIB = 1024;
const MIB = 1024 * KIB;

function bytesOf(body: Uint8Array): number[] {
  return Array.from(body);
}

/** What an at-most-once push transport declares besides its ordering and size limit. */
export const AT_MOST_ONCE_FEATURES = {
  delivery: 'at-most-once',
  persistent: false,
  multiProcess: true,
  delayedRedelivery: false,
  publishDeduplication: false,
} as const satisfies Partial<BrokerFeatures>;

/** What a durable queue of several processes declares (SQLite, Redis Streams, PostgreSQL) besides its size limit; each counts its queue depth (`pending`). */
export const DURABLE_QUEUE_FEATURES = {
  persistent: true,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: true,
  publishDeduplication: false,
  pending: true,
} as const satisfies Partial<BrokerFeatures>;

function capabilitiesOf(features: BrokerFeatures): BrokerCapabilities {
  const { delivery, persistent, multiProcess, ordering, delayedRedelivery, publishDeduplication, maxMessageBytes } = features;
  return {
    delivery: delivery ?? 'at-least-once',
    persistent,
    multiProcess,
    ordering,
    delayedRedelivery,
    publishDeduplication,
    maxMessageBytes,
  };
}

/**
 * The broker conformance suite. `factory` returns a new, connected broker each call. For a broker
 * that declares `persistent` or `multiProcess`, two brokers returned by `factory` must share one
 * store (same file, same server), since the suite publishes through one and consumes through the
 * other. Every test uses its own random topic and group names and closes what it opened.
 */
export function describeBrokerConformance(name: string, factory: () => Promise<Broker> | Broker, features: BrokerFeatures): void {
  const timeoutMs = features.timeoutMs ?? 10_000;
  const ackTimeoutMs = features.ackTimeoutMs ?? 500;
  const quietMs = features.quietMs ?? Math.max(200, ackTimeoutMs * 2);
  const nackDelayMs = features.nackDelayMs ?? 300;
  const throughputMessages = features.throughputMessages ?? 2000;
  const testTimeout = timeoutMs * 3 + quietMs * 2;
  const newTopic = () => randomName(`${features.topicPrefix ?? ''}sbt`);
  const newGroup = () => randomName('sbg');
  const atMostOnce = features.delivery === 'at-most-once';

  describe(`broker conformance: ${name}`, () => {
    const opened: Broker[] = [];
    const connect = async (): Promise<Broker> => {
      const broker = await factory();
      opened.push(broker);
      return broker;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((broker) => broker.close()));
    });

    it('declares the capabilities it was tested for', async () => {
      const broker = await connect();
      expect(broker.name).toMatch(/^[a-z0-9-]+$/);
      // A broker written before `delivery` existed leaves it out: that means at-least-once.
      expect({ ...broker.capabilities, delivery: broker.capabilities.delivery ?? 'at-least-once' }).toEqual(capabilitiesOf(features));
      expect(broker.capabilities.maxMessageBytes).toBeGreaterThan(0);
    });

    it('delivers a published message with its fields and attempt 1', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const recorder = new DeliveryRecorder();
      const subscription = await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      expect(subscription.topic).toBe(topic);
      const message = testMessage(topic, { headers: { 'ce-type': 'demo.created', 'ce-source': '/tests' } });
      await broker.publish(message);
      await recorder.waitForCount(1, timeoutMs);
      const delivery = recorder.received[0]!.delivery;
      expect(delivery.id).toBe(message.id);
      expect(delivery.topic).toBe(topic);
      expect(delivery.attempt).toBe(1);
      expect(delivery.key).toBeUndefined();
      expect(delivery.headers).toMatchObject(message.headers);
      expect(bytesOf(delivery.body)).toEqual(bytesOf(message.body));
    });

    it('publishBatch delivers every message of the batch; an empty batch resolves', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      await broker.publishBatch([]);
      const batch = Array.from({ length: 50 }, (_, i) => testMessage(topic, { headers: { n: String(i) }, key: `k${i % 5}` }));
      await broker.publishBatch(batch);
      await recorder.waitForUnique(batch.length, timeoutMs);
      const byId = new Map(recorder.received.map((r) => [r.delivery.id, r.delivery]));
      for (const message of batch) {
        const delivery = byId.get(message.id);
        expect(delivery?.headers).toMatchObject(message.headers);
        expect(delivery?.key).toBe(message.key);
        expect(bytesOf(delivery!.body)).toEqual(bytesOf(message.body));
      }
      expect(recorder.duplicates()).toEqual([]);
    });

    it('takes many concurrent publishes and delivers each once', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: newGroup(), maxInFlight: 32 }, recorder.handler);
      const messages = Array.from({ length: 200 }, () => testMessage(topic));
      await Promise.all(messages.map((message) => broker.publish(message)));
      await recorder.waitForUnique(messages.length, timeoutMs);
      expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
      expect(recorder.duplicates()).toEqual([]);
    });

    if (atMostOnce) {
      it('declareGroup keeps nothing: a group gets only what is published while it is subscribed', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const group = newGroup();
        await broker.declareGroup(topic, group);
        await broker.publishBatch(Array.from({ length: 5 }, () => testMessage(topic)));
        const recorder = new DeliveryRecorder();
        await broker.subscribe({ topic, group }, recorder.handler);
        const after = testMessage(topic);
        await broker.publish(after);
        await recorder.waitForCount(1, timeoutMs);
        await delay(quietMs);
        expect(recorder.ids()).toEqual([after.id]);
      });
    }

    if (!atMostOnce)
      it('declareGroup keeps messages published before the first subscriber', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const group = newGroup();
        await broker.declareGroup(topic, group);
        await broker.declareGroup(topic, group);
        const messages = Array.from({ length: 5 }, () => testMessage(topic));
        for (const message of messages) await broker.publish(message);
        const recorder = new DeliveryRecorder();
        await broker.subscribe({ topic, group }, recorder.handler);
        await recorder.waitForUnique(messages.length, timeoutMs);
        expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
      });

    it(features.pending
      ? 'pending counts what the group has not acknowledged: N published, then N − k after k acks; undefined for an unknown group'
      : 'has no pending (queue depth)', { timeout: testTimeout }, async () => {
      const broker = await connect();
      expect(typeof broker.pending).toBe(features.pending === true ? 'function' : 'undefined');
      if (features.pending !== true || broker.pending === undefined) return;
      const topic = newTopic();
      const group = newGroup();
      const depth = async (expected: number) => {
        const deadline = Date.now() + timeoutMs;
        let seen = await broker.pending?.(topic, group);
        while (seen !== expected && Date.now() < deadline) {
          await delay(20);
          seen = await broker.pending?.(topic, group);
        }
        expect(seen).toBe(expected);
      };
      expect(await broker.pending(topic, newGroup())).toBeUndefined();
      await broker.declareGroup(topic, group);
      await depth(0);
      const total = 6;
      const acks = 2;
      await broker.publishBatch(Array.from({ length: total }, () => testMessage(topic)));
      await depth(total);
      let acked = 0;
      const done = deferred();
      const subscription = await broker.subscribe({ topic, group, maxInFlight: 1 }, async (delivery) => {
        if (acked < acks) {
          acked++;
          await delivery.ack();
          if (acked === acks) done.resolve();
        } else {
          await delivery.nack();
        }
      });
      await done.promise;
      await subscription.close();
      await depth(total - acks);
    });

    it('balances a group: two subscribers share the messages, none is handled twice', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const group = newGroup();
      await broker.declareGroup(topic, group);
      const messages = Array.from({ length: 20 }, () => testMessage(topic));
      // An at-most-once broker keeps nothing for a group: its subscribers must be there first.
      if (!atMostOnce) await broker.publishBatch(messages);
      // Each subscriber holds its first delivery until the other has one too, so both must take part.
      const bothBusy = deferred();
      const handle = async (delivery: Delivery) => {
        if (first.count > 0 && second.count > 0) bothBusy.resolve();
        await Promise.race([bothBusy.promise, delay(timeoutMs)]);
        await delivery.ack();
      };
      const first: DeliveryRecorder = new DeliveryRecorder(handle);
      const second: DeliveryRecorder = new DeliveryRecorder(handle);
      await broker.subscribe({ topic, group, maxInFlight: 1 }, first.handler);
      await broker.subscribe({ topic, group, maxInFlight: 1 }, second.handler);
      if (atMostOnce) await broker.publishBatch(messages);
      await waitFor(() => first.unique().size + second.unique().size >= messages.length, 'all messages across the group', timeoutMs * 2);
      expect(first.count).toBeGreaterThan(0);
      expect(second.count).toBeGreaterThan(0);
      const all = [...first.ids(), ...second.ids()];
      expect(all).toHaveLength(messages.length);
      expect(new Set(all)).toEqual(new Set(messages.map((m) => m.id)));
    });

    it('fans out: every group gets its own copy', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const groups = [newGroup(), newGroup(), newGroup()];
      const recorders = groups.map(() => new DeliveryRecorder());
      await broker.declareGroup(topic, groups[2]!);
      for (const [i, group] of groups.slice(0, 2).entries()) await broker.subscribe({ topic, group }, recorders[i]!.handler);
      const messages = Array.from({ length: 10 }, () => testMessage(topic));
      if (atMostOnce) await broker.subscribe({ topic, group: groups[2]! }, recorders[2]!.handler);
      await broker.publishBatch(messages);
      if (!atMostOnce) await broker.subscribe({ topic, group: groups[2]! }, recorders[2]!.handler);
      for (const recorder of recorders) {
        await recorder.waitForUnique(messages.length, timeoutMs);
        expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
        expect(recorder.duplicates()).toEqual([]);
      }
    });

    it('ack removes the message for the group; ack and nack after ack are no-ops', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const group = newGroup();
      const recorder = new DeliveryRecorder(async (delivery) => {
        await delivery.ack();
        await delivery.ack();
        await delivery.nack();
      });
      const subscription = await broker.subscribe({ topic, group, ackTimeoutMs }, recorder.handler);
      await broker.publish(testMessage(topic));
      await recorder.waitForCount(1, timeoutMs);
      await subscription.close();
      await broker.subscribe({ topic, group, ackTimeoutMs }, recorder.handler);
      await delay(quietMs);
      expect(recorder.count).toBe(1);
    });

    if (atMostOnce) {
      it('nack, nack with a delay, a rejecting handler and an unsettled delivery redeliver nothing', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const behaviours = ['nack', 'nack-delay', 'reject', 'unsettled'] as const;
        const messages = behaviours.map((behaviour) => testMessage(topic, { headers: { behaviour } }));
        const recorder = new DeliveryRecorder(async (delivery) => {
          const behaviour = delivery.headers.behaviour;
          if (behaviour === 'nack') await delivery.nack();
          else if (behaviour === 'nack-delay') await delivery.nack(nackDelayMs);
          else if (behaviour === 'reject') throw new Error('handler failed');
        });
        await broker.subscribe({ topic, group: newGroup(), ackTimeoutMs }, recorder.handler);
        await broker.publishBatch(messages);
        await recorder.waitForCount(messages.length, timeoutMs);
        await delay(Math.max(quietMs, nackDelayMs, ackTimeoutMs) + quietMs);
        expect(recorder.count).toBe(messages.length);
        expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
        expect(recorder.received.every((r) => r.delivery.attempt === 1)).toBe(true);
        // The subscription still works after all that.
        const later = testMessage(topic);
        await broker.publish(later);
        await recorder.waitForCount(messages.length + 1, timeoutMs);
        expect(recorder.ids().at(-1)).toBe(later.id);
      });
    }

    if (!atMostOnce)
      it('nack redelivers with attempt + 1 and the same content', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const recorder = new DeliveryRecorder((delivery) => (delivery.attempt < 3 ? delivery.nack() : delivery.ack()));
        await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
        const message = testMessage(topic, { headers: { a: '1' }, key: 'k1' });
        await broker.publish(message);
        await recorder.waitForCount(3, timeoutMs);
        expect(recorder.received.map((r) => r.delivery.attempt)).toEqual([1, 2, 3]);
        for (const { delivery } of recorder.received) {
          expect(delivery.id).toBe(message.id);
          expect(delivery.key).toBe('k1');
          expect(delivery.headers).toMatchObject(message.headers);
          expect(bytesOf(delivery.body)).toEqual(bytesOf(message.body));
        }
        await delay(quietMs);
        expect(recorder.count).toBe(3);
      });

    if (!atMostOnce)
      it('nack with a delay redelivers no earlier than the delay and does not block other messages', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const delayed = testMessage(topic);
        const other = testMessage(topic);
        let nackedAt = 0;
        const recorder = new DeliveryRecorder(async (delivery) => {
          if (delivery.id === delayed.id && delivery.attempt === 1) {
            nackedAt = Date.now();
            await delivery.nack(nackDelayMs);
            await broker.publish(other);
            return;
          }
          await delivery.ack();
        });
        await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
        await broker.publish(delayed);
        await recorder.waitForCount(3, timeoutMs + nackDelayMs);
        const redelivery = recorder.received.find((r) => r.delivery.id === delayed.id && r.delivery.attempt === 2);
        expect(redelivery).toBeDefined();
        // 20 ms of slack for clock granularity between the engine and this process.
        expect(redelivery!.at - nackedAt).toBeGreaterThanOrEqual(nackDelayMs - 20);
        expect(recorder.ids()).toEqual([delayed.id, other.id, delayed.id]);
      });

    if (!atMostOnce)
      it('a handler that rejects without settling gets the message again', { timeout: testTimeout }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const recorder = new DeliveryRecorder(async (delivery) => {
          if (delivery.attempt === 1) throw new Error('handler failed');
          await delivery.ack();
        });
        await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
        const message = testMessage(topic);
        await broker.publish(message);
        await recorder.waitForCount(2, timeoutMs);
        expect(recorder.received.map((r) => [r.delivery.id, r.delivery.attempt])).toEqual([
          [message.id, 1],
          [message.id, 2],
        ]);
      });

    if (!atMostOnce)
      it('redelivers a delivery left unsettled past ackTimeoutMs; a late ack of the old delivery is harmless', {
        timeout: testTimeout,
      }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const recorder = new DeliveryRecorder(async (delivery) => {
          if (delivery.attempt > 1) await delivery.ack();
        });
        await broker.subscribe({ topic, group: newGroup(), ackTimeoutMs }, recorder.handler);
        const message = testMessage(topic);
        await broker.publish(message);
        await recorder.waitForCount(2, timeoutMs + ackTimeoutMs * 2);
        const [first, second] = recorder.received;
        expect(second!.delivery.id).toBe(message.id);
        expect(second!.delivery.attempt).toBe(2);
        expect(second!.at - first!.at).toBeGreaterThanOrEqual(ackTimeoutMs - 20);
        await expect(first!.delivery.ack()).resolves.toBeUndefined();
        await delay(quietMs);
        expect(recorder.count).toBe(2);
      });

    it(atMostOnce
      ? 'never runs more handlers at once than maxInFlight'
      : 'never hands more unsettled deliveries to the handler than maxInFlight', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const maxInFlight = 3;
      const held: Delivery[] = [];
      // At-most-once: a delivery holds its slot while its handler runs (ack is a no-op), so the
      // handler itself waits; at-least-once: until it is settled.
      const gates: (() => void)[] = [];
      const recorder = new DeliveryRecorder(async (delivery) => {
        held.push(delivery);
        if (atMostOnce) await new Promise<void>((resolve) => gates.push(resolve));
      });
      await broker.subscribe({ topic, group: newGroup(), maxInFlight }, recorder.handler);
      const messages = Array.from({ length: 10 }, () => testMessage(topic));
      await broker.publishBatch(messages);
      let expected = 0;
      while (expected < messages.length) {
        expected = Math.min(messages.length, expected + maxInFlight);
        await recorder.waitForCount(expected, timeoutMs);
        await delay(50);
        // Handlers returned, but their deliveries are still unsettled: no more may arrive.
        expect(recorder.count).toBe(expected);
        await Promise.all(held.splice(0).map((delivery) => delivery.ack()));
        for (const open of gates.splice(0)) open();
      }
      expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));

      // Concurrency seen by handlers that settle as they finish.
      const topic2 = newTopic();
      let inFlight = 0;
      let highest = 0;
      const busy = new DeliveryRecorder(async (delivery) => {
        inFlight += 1;
        highest = Math.max(highest, inFlight);
        await delay(2);
        inFlight -= 1;
        await delivery.ack();
      });
      await broker.subscribe({ topic: topic2, group: newGroup(), maxInFlight }, busy.handler);
      await broker.publishBatch(Array.from({ length: 30 }, () => testMessage(topic2)));
      await busy.waitForUnique(30, timeoutMs);
      expect(highest).toBeGreaterThanOrEqual(1);
      expect(highest).toBeLessThanOrEqual(maxInFlight);
    });

    it('keeps headers, key and binary bodies intact (non-UTF-8, empty, large)', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      const largeSize = Math.min(256 * KIB, Math.floor(features.maxMessageBytes / 2));
      const large = new Uint8Array(largeSize);
      for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
      const messages: OutgoingMessage[] = [
        testMessage(topic, { body: Uint8Array.from({ length: 256 }, (_, i) => i), key: 'customer-42' }),
        testMessage(topic, { body: Uint8Array.from([0xc3, 0x28, 0xa0, 0xa1, 0xff, 0xfe, 0x00, 0x80, 0xed, 0xa0, 0x80]) }),
        testMessage(topic, { body: new Uint8Array(0) }),
        testMessage(topic, { body: large }),
        testMessage(topic, {
          headers: {
            'content-type': 'application/octet-stream',
            traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
            'x-unicode': 'héllo — 你好 ✓',
            'x-empty': '',
            'x-spaces': '  a b  ',
          },
          key: 'ключ-1',
        }),
      ];
      await broker.publishBatch(messages);
      await recorder.waitForUnique(messages.length, timeoutMs);
      const byId = new Map(recorder.received.map((r) => [r.delivery.id, r.delivery]));
      for (const message of messages) {
        const delivery = byId.get(message.id)!;
        expect(delivery.body).toBeInstanceOf(Uint8Array);
        expect(delivery.body.byteLength).toBe(message.body.byteLength);
        expect(Buffer.from(delivery.body).equals(Buffer.from(message.body))).toBe(true);
        expect(delivery.headers).toMatchObject(message.headers);
        expect(delivery.key).toBe(message.key);
      }
    });

    it('rejects a body over maxMessageBytes with SB_MESSAGE_TOO_LARGE', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const size = features.maxMessageBytes + 1;
      // Engines with huge limits are checked with a 1 MiB round trip instead of a huge allocation.
      if (size <= 64 * MIB) {
        const error = await broker.publish(testMessage(topic, { body: new Uint8Array(size) })).catch((e: unknown) => e);
        expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
      } else {
        const recorder = new DeliveryRecorder();
        await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
        const message = testMessage(topic, { body: new Uint8Array(MIB).fill(0xab) });
        await broker.publish(message);
        await recorder.waitForCount(1, timeoutMs);
        expect(recorder.received[0]!.delivery.body.byteLength).toBe(MIB);
      }
    });

    it(`keeps the declared ordering (${features.ordering})`, { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const group = newGroup();
      await broker.declareGroup(topic, group);
      const keys = ['a', 'b', 'c'];
      const messages = Array.from({ length: 45 }, (_, i) => testMessage(topic, { key: keys[i % keys.length]!, headers: { n: String(i) } }));
      // An at-most-once broker delivers only to subscribers already there: subscribe, then publish.
      const publishAll = async () => {
        await broker.publishBatch(messages.slice(0, 15));
        for (const message of messages.slice(15)) await broker.publish(message);
      };
      if (!atMostOnce) await publishAll();
      const published = atMostOnce ? publishAll : async () => {};

      if (features.ordering === 'per-topic') {
        const recorder = new DeliveryRecorder();
        await broker.subscribe({ topic, group, maxInFlight: 1 }, recorder.handler);
        await published();
        await recorder.waitForCount(messages.length, timeoutMs);
        expect(recorder.ids()).toEqual(messages.map((m) => m.id));
      } else if (features.ordering === 'per-key') {
        const busyKeys = new Set<string>();
        const overlaps: string[] = [];
        const recorder = new DeliveryRecorder(async (delivery) => {
          const key = delivery.key ?? '';
          if (busyKeys.has(key)) overlaps.push(key);
          busyKeys.add(key);
          await delay(1);
          busyKeys.delete(key);
          await delivery.ack();
        });
        await broker.subscribe({ topic, group, maxInFlight: 8 }, recorder.handler);
        await published();
        await recorder.waitForCount(messages.length, timeoutMs);
        expect(overlaps).toEqual([]);
        for (const key of keys) {
          const sent = messages.filter((m) => m.key === key).map((m) => m.id);
          const got = recorder.received.filter((r) => r.delivery.key === key).map((r) => r.delivery.id);
          expect(got).toEqual(sent);
        }
      } else {
        const recorder = new DeliveryRecorder();
        await broker.subscribe({ topic, group, maxInFlight: 8 }, recorder.handler);
        await published();
        await recorder.waitForUnique(messages.length, timeoutMs);
        expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
      }
    });

    /** Holds the first four handlers of a 4-slot subscription and closes it: the close waits for them. */
    const closeWhileHandling = async (broker: Broker, topic: string, group: string, publish: () => Promise<void>) => {
      const release = deferred();
      const finished: string[] = [];
      const first = new DeliveryRecorder(async (delivery) => {
        await release.promise;
        await delivery.ack();
        finished.push(delivery.id);
      });
      const subscription = await broker.subscribe({ topic, group, maxInFlight: 4 }, first.handler);
      await publish();
      await first.waitForCount(4, timeoutMs);
      let closed = false;
      const closing = subscription.close().then(() => {
        closed = true;
      });
      await delay(50);
      expect(closed).toBe(false);
      release.resolve();
      await closing;
      expect(finished).toHaveLength(first.count);
      return { first, finished };
    };

    if (atMostOnce) {
      it('subscription close lets running and queued handlers finish; the next subscriber gets only new messages', {
        timeout: testTimeout,
      }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const group = newGroup();
        const messages = Array.from({ length: 20 }, () => testMessage(topic));
        const { first } = await closeWhileHandling(broker, topic, group, () => broker.publishBatch(messages));
        expect(first.duplicates()).toEqual([]);

        const second = new DeliveryRecorder();
        await broker.subscribe({ topic, group }, second.handler);
        const fresh = testMessage(topic);
        await broker.publish(fresh);
        await second.waitForCount(1, timeoutMs);
        await delay(quietMs);
        expect(second.ids()).toEqual([fresh.id]);
        expect(first.ids()).not.toContain(fresh.id);
      });
    }

    if (!atMostOnce)
      it('subscription close waits for in-flight handlers and releases the rest to the next subscriber', {
        timeout: testTimeout,
      }, async () => {
        const broker = await connect();
        const topic = newTopic();
        const group = newGroup();
        await broker.declareGroup(topic, group);
        const messages = Array.from({ length: 20 }, () => testMessage(topic));
        await broker.publishBatch(messages);
        const { first, finished: acked } = await closeWhileHandling(broker, topic, group, async () => {});
        const handledByFirst = first.count;

        const second = new DeliveryRecorder();
        await broker.subscribe({ topic, group }, second.handler);
        const rest = messages.map((m) => m.id).filter((id) => !acked.includes(id));
        await second.waitForUnique(rest.length, timeoutMs + ackTimeoutMs);
        expect(second.unique()).toEqual(new Set(rest));
        expect(first.count).toBe(handledByFirst);
      });

    it('broker close drains handlers, is idempotent, and later publishes fail with SB_CLOSED', { timeout: testTimeout }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const release = deferred();
      let handlerDone = false;
      const recorder = new DeliveryRecorder(async (delivery) => {
        await release.promise;
        await delivery.ack();
        handlerDone = true;
      });
      await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      await broker.publish(testMessage(topic));
      await recorder.waitForCount(1, timeoutMs);
      const closing = broker.close();
      await delay(50);
      expect(handlerDone).toBe(false);
      release.resolve();
      await closing;
      expect(handlerDone).toBe(true);
      await broker.close();
      const error = await broker.publish(testMessage(topic)).catch((e: unknown) => e);
      expect(isSwitchboardError(error, 'SB_CLOSED')).toBe(true);
      const subscribeError = await broker.subscribe({ topic, group: newGroup() }, recorder.handler).catch((e: unknown) => e);
      expect(isSwitchboardError(subscribeError, 'SB_CLOSED')).toBe(true);
    });

    // A persistent broker keeps messages across a restart; a non-persistent engine that runs as a
    // server (multiProcess) still keeps them while the server runs. Only an in-process,
    // non-persistent broker loses them with the broker object.
    const keepsMessages = !atMostOnce && (features.persistent || features.multiProcess);
    it(keepsMessages ? 'keeps unconsumed messages across broker instances' : 'keeps nothing across broker instances', {
      timeout: testTimeout,
    }, async () => {
      const topic = newTopic();
      const group = newGroup();
      const before = await connect();
      await before.declareGroup(topic, group);
      const messages = Array.from({ length: 3 }, () => testMessage(topic));
      await before.publishBatch(messages);
      await before.close();
      const after = await connect();
      const recorder = new DeliveryRecorder();
      await after.subscribe({ topic, group }, recorder.handler);
      if (keepsMessages) {
        await recorder.waitForUnique(messages.length, timeoutMs);
        expect(recorder.unique()).toEqual(new Set(messages.map((m) => m.id)));
      } else {
        await delay(quietMs);
        expect(recorder.count).toBe(0);
      }
    });

    it(features.multiProcess
      ? 'connects publishers and consumers through separate brokers'
      : 'keeps each broker to itself (single process)', {
      timeout: testTimeout,
    }, async () => {
      const publisher = await connect();
      const consumer = await connect();
      const topic = newTopic();
      const group = newGroup();
      const remote = new DeliveryRecorder();
      const local = new DeliveryRecorder();
      await consumer.subscribe({ topic, group }, remote.handler);
      await publisher.subscribe({ topic, group: newGroup() }, local.handler);
      const messages = Array.from({ length: 10 }, () => testMessage(topic));
      await publisher.publishBatch(messages);
      await local.waitForUnique(messages.length, timeoutMs);
      if (features.multiProcess) {
        // A second subscriber of the same group, on the publishing broker, shares the group's messages.
        const sharing = new DeliveryRecorder();
        await publisher.subscribe({ topic, group }, sharing.handler);
        const more = Array.from({ length: 10 }, () => testMessage(topic));
        await publisher.publishBatch(more);
        const all = [...messages, ...more].map((m) => m.id);
        await waitFor(() => remote.unique().size + sharing.unique().size >= all.length, 'the group to get every message', timeoutMs);
        expect(new Set([...remote.ids(), ...sharing.ids()])).toEqual(new Set(all));
        expect(remote.count + sharing.count).toBe(all.length);
      } else {
        await delay(quietMs);
        expect(remote.count).toBe(0);
      }
    });

    it(features.publishDeduplication ? 'drops a second publish of the same MessageId' : 'delivers a re-published MessageId again', {
      timeout: testTimeout,
    }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      const message = testMessage(topic, { id: newMessageId() });
      await broker.publish(message);
      await broker.publish(message);
      const expected = features.publishDeduplication ? 1 : 2;
      await recorder.waitForCount(expected, timeoutMs);
      await delay(quietMs);
      expect(recorder.count).toBe(expected);
      expect(new Set(recorder.ids())).toEqual(new Set([message.id]));
    });

    it(features.publishDeduplication
      ? 'delivers a replay (same headers and body, transport id <id>~r1.<suffix>) after the original was acked; drops a second publish of the original id'
      : 'delivers a replay (same headers and body, transport id <id>~r1.<suffix>) after the original was acked', {
      timeout: testTimeout,
    }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const acked: string[] = [];
      const recorder = new DeliveryRecorder(async (delivery) => {
        await delivery.ack();
        acked.push(delivery.id);
      });
      await broker.subscribe({ topic, group: newGroup() }, recorder.handler);
      const original = testMessage(topic, {
        id: newMessageId(),
        headers: { 'ce-specversion': '1.0', 'ce-id': 'replayed-event', 'ce-source': '/tests', 'ce-type': 'demo.replayed' },
        key: 'k-replay',
      });
      await broker.publish(original);
      await waitFor(() => acked.length >= 1, 'the original to be handled and acked', timeoutMs);
      // What a dead-letter replay publishes: the very same message under a new transport id.
      const replay: OutgoingMessage = { ...original, id: `${original.id}~r1.abcd` };
      if (features.publishDeduplication) await broker.publish(original);
      await broker.publish(replay);
      await waitFor(() => acked.length >= 2, 'the replay to be handled and acked', timeoutMs);
      await delay(quietMs);
      expect(recorder.ids()).toEqual([original.id, replay.id]);
      const [first, second] = recorder.received.map((r) => r.delivery);
      expect(second!.headers).toMatchObject(original.headers);
      expect(second!.key).toBe(original.key);
      expect(bytesOf(second!.body)).toEqual(bytesOf(first!.body));
      expect(second!.attempt).toBe(1);
    });

    it('request/reply: a served request gets its reply (headers and bytes intact), one receiver of the group answers', {
      timeout: testTimeout,
    }, async () => {
      const server = await connect();
      const client = features.multiProcess ? await connect() : server;
      const served = requestsOf(server);
      const asking = client === server ? served : requestsOf(client);
      const topic = newTopic();
      const group = newGroup();
      const answered: string[] = [];
      const serve = (who: string) =>
        served.requests.serve({ topic, group }, async (request) => {
          answered.push(who);
          expect(request.topic).toBe(topic);
          expect(request.headers['ce-type']).toBe('demo.asked');
          await request.reply({
            headers: { 'ce-type': 'demo.answered', 'x-echo': request.headers['x-question'] ?? '' },
            body: request.body,
          });
        });
      const subscriptions = [await serve('first'), await serve('second')];
      try {
        const body = new Uint8Array([0, 1, 2, 0xff, 0xfe]);
        const reply = await asking.requests.request(
          testMessage(topic, { headers: { 'ce-type': 'demo.asked', 'x-question': 'why?' }, body }),
          { timeoutMs },
        );
        expect(bytesOf(reply.body)).toEqual(bytesOf(body));
        expect(reply.headers['ce-type']).toBe('demo.answered');
        expect(reply.headers['x-echo']).toBe('why?');
        const many = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            asking.requests.request(testMessage(topic, { headers: { 'ce-type': 'demo.asked' }, body: new TextEncoder().encode(`q${i}`) }), {
              timeoutMs,
            }),
          ),
        );
        expect(many.map((r) => new TextDecoder().decode(r.body))).toEqual(Array.from({ length: 20 }, (_, i) => `q${i}`));
        expect(answered).toHaveLength(21);
        expect(asking.requests.pending).toBe(0);
      } finally {
        await Promise.all(subscriptions.map((subscription) => subscription.close()));
        if (served.owned) await served.requests.close();
        if (asking !== served && asking.owned) await asking.requests.close();
      }
    });

    it(features.noResponders
      ? 'request/reply: no responders fails at once with SB_NO_RESPONDERS; timeout, abort and close leave nothing pending'
      : 'request/reply: an unserved request times out with SB_REPLY_TIMEOUT; abort and close leave nothing pending', {
      timeout: testTimeout,
    }, async () => {
      const broker = await connect();
      const { requests, owned } = requestsOf(broker);
      const topic = newTopic();
      const unserved = await requests.request(testMessage(topic), { timeoutMs: quietMs }).catch((e: unknown) => e);
      expect(isSwitchboardError(unserved, features.noResponders === true ? 'SB_NO_RESPONDERS' : 'SB_REPLY_TIMEOUT')).toBe(true);
      expect(requests.pending).toBe(0);
      // A receiver that takes the request and never answers: the timeout, then an abort.
      const silent = await requests.serve({ topic, group: newGroup() }, async () => {});
      const timedOut = await requests.request(testMessage(topic), { timeoutMs: 100 }).catch((e: unknown) => e);
      expect(isSwitchboardError(timedOut, 'SB_REPLY_TIMEOUT')).toBe(true);
      const controller = new AbortController();
      const aborted = requests.request(testMessage(topic), { timeoutMs, signal: controller.signal }).catch((e: unknown) => e);
      controller.abort();
      expect(isSwitchboardError(await aborted, 'SB_ABORTED')).toBe(true);
      expect(requests.pending).toBe(0);
      const invalid = await requests.request(testMessage(topic), { timeoutMs: 0 }).catch((e: unknown) => e);
      expect(isSwitchboardError(invalid, 'SB_CONFIG_INVALID')).toBe(true);
      await silent.close();
      if (owned) {
        const waiting = requests.request(testMessage(topic), { timeoutMs }).catch((e: unknown) => e);
        await delay(20);
        await requests.close();
        expect(isSwitchboardError(await waiting, 'SB_CLOSED')).toBe(true);
        expect(requests.pending).toBe(0);
      }
    });

    it('rejects subscribe options out of range with SB_CONFIG_INVALID', async () => {
      const broker = await connect();
      const topic = newTopic();
      const noop = async () => {};
      for (const options of [{ maxInFlight: 0 }, { maxInFlight: 1.5 }, { ackTimeoutMs: 0 }, { ackTimeoutMs: -1 }]) {
        const error = await broker.subscribe({ topic, group: newGroup(), ...options }, noop).catch((e: unknown) => e);
        expect(isSwitchboardError(error, 'SB_CONFIG_INVALID')).toBe(true);
      }
    });

    it(`moves ${throughputMessages} messages of 1 KiB, each handled exactly once`, { timeout: testTimeout * 2 }, async () => {
      const broker = await connect();
      const topic = newTopic();
      const group = newGroup();
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group, maxInFlight: 256 }, recorder.handler);
      const body = new Uint8Array(KIB).fill(0x61);
      const messages = Array.from({ length: throughputMessages }, () => testMessage(topic, { body }));
      const batches: OutgoingMessage[][] = [];
      for (let i = 0; i < messages.length; i += 250) batches.push(messages.slice(i, i + 250));
      await Promise.all(
        batches.map((batch, i) => (i % 2 === 0 ? broker.publishBatch(batch) : Promise.all(batch.map((m) => broker.publish(m))))),
      );
      await recorder.waitForUnique(messages.length, timeoutMs * 3);
      expect(recorder.duplicates()).toEqual([]);
      expect(recorder.count).toBe(messages.length);
      expect(recorder.received.every((r) => r.delivery.body.byteLength === KIB)).toBe(true);
    });
  });
}
