/**
 * Fuzzing the broker path end to end, on the memory broker and the SQLite broker: random headers
 * and bodies — valid events of the handled types, events broken in every way, bytes that are no
 * event — published raw (`broker.publish`) to the topic a `createMessaging` consumer handles. Each
 * message is counted: published = handled + dead-lettered, every one acknowledged exactly once
 * (none stuck, none lost, nothing unknown), every dead letter with a documented reason (and bytes
 * that are not a CloudEvent always one), the handler never given data its schema refuses, and the
 * consumer still handles a fresh message after each run.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker, CloudEvent, DeadLetterStore, Delivery, NewDeadLetter, ReceiptStore, SettleMessage } from '@switchboard/core';
import { decodeCloudEvent, encodeCloudEvent, PermanentError, subscribeTracing, tracing } from '@switchboard/core';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import type { Messaging } from '@switchboard/messaging';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteDeadLetterStore, createSqliteReceiptStore } from '@switchboard/sqlite';
import { attributeString, flatHeaders, fuzzParameters, hostileMessage } from '@switchboard/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceB } from './harness.js';

const TOPIC = 'service-b.messages';
const FUZZ_HEADER = 'x-fuzz-id';
const REASONS = new Set(['max-attempts', 'permanent', 'invalid', 'not-cloudevent', 'unknown-type', 'claim-check', 'store']);

/** What the counting proxies saw. */
interface Ledger {
  /** Acknowledgements per transport id. */
  readonly acks: Map<string, number>;
  /** Dead letters handed to the store, by the fuzz id in their headers. */
  readonly deadLetters: Map<string, NewDeadLetter[]>;
  /** Data the handler was given. */
  readonly handled: unknown[];
  /** Final outcomes told to the `switchboard:settle` channel (retries left out). */
  readonly outcomes: { ack: number; deadLetter: number };
}

/** The broker, its deliveries counted. */
function counting(broker: Broker, ledger: Ledger): Broker {
  const wrap = (delivery: Delivery): Delivery => ({
    get id() {
      return delivery.id;
    },
    topic: delivery.topic,
    headers: delivery.headers,
    body: delivery.body,
    ...(delivery.key === undefined ? {} : { key: delivery.key }),
    attempt: delivery.attempt,
    ack: () => {
      ledger.acks.set(delivery.id, (ledger.acks.get(delivery.id) ?? 0) + 1);
      return delivery.ack();
    },
    nack: (delayMs) => delivery.nack(delayMs),
  });
  return {
    name: broker.name,
    binding: broker.binding,
    capabilities: broker.capabilities,
    publish: (message) => broker.publish(message),
    publishBatch: (messages) => broker.publishBatch(messages),
    declareGroup: (topic, group) => broker.declareGroup(topic, group),
    subscribe: (options, handler) => broker.subscribe(options, (delivery) => handler(wrap(delivery))),
    close: () => broker.close(),
  };
}

/** The dead-letter store, every entry handed to it recorded under its message's fuzz id. */
function recording(store: DeadLetterStore, ledger: Ledger): DeadLetterStore {
  const note = (entry: NewDeadLetter): void => {
    const id = entry.headers[FUZZ_HEADER] ?? '';
    ledger.deadLetters.set(id, [...(ledger.deadLetters.get(id) ?? []), entry]);
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'add')
        return (entry: NewDeadLetter) => {
          note(entry);
          return target.add(entry);
        };
      if (property === 'addBatch')
        return (entries: readonly NewDeadLetter[]) => {
          for (const entry of entries) note(entry);
          return target.addBatch(entries);
        };
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

interface Engine {
  readonly broker: Broker;
  readonly receipts: ReceiptStore;
  readonly deadLetters: DeadLetterStore;
  close(): Promise<void>;
}

const engines: readonly [string, () => Engine][] = [
  [
    'memory',
    () => {
      const receipts = createMemoryReceiptStore();
      const deadLetters = createMemoryDeadLetterStore();
      const broker = createMemoryBroker({ drainTimeoutMs: 200 });
      return {
        broker,
        receipts,
        deadLetters,
        close: async () => {
          await broker.close();
          await receipts.close();
          await deadLetters.close();
        },
      };
    },
  ],
  [
    'sqlite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'sb-fuzz-'));
      const path = join(dir, 'sb.db');
      const broker = createSqliteBroker({ path, pollIntervalMs: 5, drainTimeoutMs: 200 });
      const receipts = createSqliteReceiptStore({ path });
      const deadLetters = createSqliteDeadLetterStore({ path });
      return {
        broker,
        receipts,
        deadLetters,
        close: async () => {
          await broker.close();
          await receipts.close();
          await deadLetters.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
];

/** Valid events of the handled type (names that make the handler fail, too) and of others. */
const handledEvent = fc
  .record({
    id: attributeString,
    source: fc.constantFrom('service-a', '/fuzz', 'curl'),
    type: fc.constantFrom('service-b.name.submitted', 'service-b.name.submitted', 'service-b.op.save', 'service-b.unknown'),
    data: fc.oneof(
      fc.record({ name: fc.constantFrom('ada', 'grace', 'boom', 'perm', '') }),
      fc.record({ name: fc.string({ maxLength: 8 }), count: fc.oneof(fc.integer(), fc.double(), fc.string()) }),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  })
  .map(
    (p): CloudEvent => ({
      specversion: '1.0',
      id: p.id,
      source: p.source,
      type: p.type,
      datacontenttype: 'application/json',
      data: p.data,
    }),
  );

let sequence = 0;

function messagesFor(broker: Broker): fc.Arbitrary<{ headers: Record<string, string>; body: Uint8Array }[]> {
  const one = fc.oneof(
    { weight: 3, arbitrary: hostileMessage(broker.binding).map(({ headers, body }) => ({ headers: flatHeaders(headers), body })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(handledEvent, fc.constantFrom('binary', 'structured') as fc.Arbitrary<'binary' | 'structured'>)
        .map(([event, mode]) => {
          const { headers, body } = encodeCloudEvent(event, broker.binding, mode);
          return { headers: { ...headers }, body };
        }),
    },
  );
  return fc.array(one, { minLength: 1, maxLength: 8 });
}

function decodes(headers: Record<string, string>, body: Uint8Array, broker: Broker): boolean {
  try {
    decodeCloudEvent(headers, body, broker.binding);
    return true;
  } catch {
    return false;
  }
}

async function until(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

describe.each(engines)('fuzz: the broker path end to end on %s', (_name, factory) => {
  let engine: Engine;
  let broker: Broker;
  let messaging: Messaging;
  const ledger: Ledger = { acks: new Map(), deadLetters: new Map(), handled: [], outcomes: { ack: 0, deadLetter: 0 } };
  let unsubscribe: (() => void) | undefined;
  const onSettle = {
    start(message: SettleMessage): void {
      const { settlement } = message;
      if (settlement === 'ack' || settlement === 'filtered') ledger.outcomes.ack++;
      else if (settlement === 'dead-letter') ledger.outcomes.deadLetter++;
    },
  };

  beforeAll(async () => {
    engine = factory();
    broker = counting(engine.broker, ledger);
    messaging = createMessaging({
      broker,
      service: 'service-b',
      receipts: engine.receipts,
      deadLetters: recording(engine.deadLetters, ledger),
      retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 5 } },
      handlerTimeoutMs: 2_000,
      // Messages of one run often share an identity: a copy that finds the other one processing
      // waits out the lease, so keep it short (the handlers take microseconds).
      inboxLeaseMs: 300,
    });
    messaging.handle(serviceB, 'name.submitted', (data) => {
      ledger.handled.push(data);
      if (data.name === 'boom') throw new Error('the handler failed');
      if (data.name === 'perm') throw new PermanentError('the handler refused it');
    });
    messaging.serve(serviceB, { save: () => ({ id: 'saved' }) });
    await messaging.start();
    unsubscribe = subscribeTracing(tracing.settle, onSettle);
  });

  afterAll(async () => {
    unsubscribe?.();
    await messaging?.close();
    await engine?.close();
  });

  it('published = handled + dead-lettered: each message acknowledged once, none stuck, none lost, a reason for every dead letter', async () => {
    await fc.assert(
      fc.asyncProperty(messagesFor(broker), async (messages) => {
        const run = ++sequence;
        ledger.outcomes.ack = 0;
        ledger.outcomes.deadLetter = 0;
        const published = messages.map((message, i) => {
          const id = `fz${run}-${i}`;
          return { id, headers: { ...message.headers, [FUZZ_HEADER]: id }, body: message.body };
        });
        // Then one valid message: the consumer must still be taking new work after the run.
        const canary = `canary-${run}`;
        const encoded = encodeCloudEvent(
          {
            specversion: '1.0',
            id: canary,
            source: 'fuzz',
            type: 'service-b.name.submitted',
            datacontenttype: 'application/json',
            data: { name: canary },
          },
          broker.binding,
        );
        published.push({ id: `fz${run}-canary`, headers: { ...encoded.headers, [FUZZ_HEADER]: `fz${run}-canary` }, body: encoded.body });
        for (const message of published)
          await broker.publish({ id: message.id, topic: TOPIC, headers: message.headers, body: message.body });

        const settled = await until(() => published.every((message) => ledger.acks.has(message.id)), 20_000);
        const stuck = published.filter((message) => !ledger.acks.has(message.id)).map((message) => message.id);
        expect(settled, `stuck: ${stuck.join(', ')}`).toBe(true);

        let deadLettered = 0;
        for (const message of published) {
          expect(ledger.acks.get(message.id), `${message.id} acknowledged once`).toBe(1);
          const entries = ledger.deadLetters.get(message.id) ?? [];
          if (entries.length > 0) deadLettered++;
          for (const entry of entries) {
            expect(REASONS.has(entry.reason), entry.reason).toBe(true);
            expect(entry.attempts.length).toBeGreaterThan(0);
            // The dead letter keeps the exact bytes received.
            expect(Buffer.from(entry.body).equals(Buffer.from(message.body))).toBe(true);
          }
          // Bytes that are no CloudEvent can only become a dead letter.
          if (!decodes(message.headers, message.body, broker)) {
            expect(
              entries.map((entry) => entry.reason),
              message.id,
            ).toEqual([expect.stringMatching(/^(not-cloudevent|invalid)$/)]);
          }
        }
        // Counted twice, apart: the consumer's own account (the settle channel) against the
        // acknowledgements and the dead letters the store was given.
        expect(ledger.outcomes.deadLetter).toBe(deadLettered);
        expect(ledger.outcomes.ack + ledger.outcomes.deadLetter).toBe(published.length);
        expect(ledger.handled.some((data) => (data as { name?: unknown }).name === canary)).toBe(true);
        // Nothing was acknowledged that was not published in this run or an earlier one.
        for (const id of ledger.acks.keys()) expect(id.startsWith('fz')).toBe(true);
        // The handler only ever saw data its schema takes.
        for (const data of ledger.handled) expect(typeof (data as { name?: unknown }).name).toBe('string');
      }),
      fuzzParameters(60),
    );
    // The fuzzer must reach the handler with more than the canaries: fuzzed messages were handled too.
    const fuzzed = ledger.handled.filter((data) => !String((data as { name?: unknown }).name).startsWith('canary-'));
    expect(fuzzed.length).toBeGreaterThan(fuzzParameters(60).numRuns / 4);
  });
});
