import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeadLetterStore, ReceiptStore } from '@switchboard/core';
import { defineContract, message } from '@switchboard/core';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { createSqliteDeadLetterStore, createSqliteReceiptStore } from '@switchboard/sqlite';
import { z } from 'zod';
import type { BrokerDriver, ConsumeOptions, QueueDriver } from '../queue-driver.js';
import { GROUP } from '../queue-driver.js';
import { readStamp } from '../stamp.js';

/**
 * What the messaging layer runs on the consumer side. `transport`: CloudEvents envelope, schema
 * validation, ack (no inbox, no receipts). `full`: the same plus the inbox and receipts, in a
 * SQLite file of the consumer's own (the embedded default). `full-native`: inbox and receipts in
 * the engine itself (PostgreSQL, Redis), where it can hold them.
 */
export type MessagingMode = 'transport' | 'full' | 'full-native';

/** Stores a consumer's `full-native` mode keeps on its engine, and how to remove them afterwards. */
export interface NativeStores {
  readonly receipts: () => ReceiptStore;
  readonly drop: () => Promise<void>;
}

const schema = z.object({ n: z.number().int(), sentAt: z.number(), pad: z.string() });

/** The contract of one topic: its name is the topic, so messages travel on `<topic>.messages`. */
function contractOf(topic: string) {
  return defineContract({ name: topic, messages: { work: message({ schema }) } });
}

type BenchContract = ReturnType<typeof contractOf>;

/** The broker topic the messaging layer uses for the messages of the contract named `topic`. */
const messagesTopic = (topic: string): string => `${topic}.messages`;

const pads = new Map<number, string>();

/** Padding that makes the JSON of one message as long as the raw body it stands for. */
function padFor(bytes: number): string {
  let pad = pads.get(bytes);
  if (pad === undefined) {
    const overhead = JSON.stringify({ n: 1_000_000, sentAt: 1234567.123456, pad: '' }).length;
    pad = 'x'.repeat(Math.max(0, bytes - overhead));
    pads.set(bytes, pad);
  }
  return pad;
}

/**
 * Switchboard messaging over an engine's adapter, measured next to the raw client: a publish is a
 * typed `send` (validated, CloudEvents binary envelope, confirmed), a batch is `sendBatch`, and the
 * consumer is a `createMessaging` service whose handler runs for each message before it is acked.
 * The message's JSON is as long as the raw body (100 bytes in the engine scenarios).
 */
export class MessagingDriver implements QueueDriver {
  readonly #inner: BrokerDriver;
  readonly #mode: MessagingMode;
  readonly #native: NativeStores | undefined;
  readonly #contracts = new Map<string, BenchContract>();
  readonly #dir = mkdtempSync(join(tmpdir(), 'sb-bench-messaging-'));
  #producer: Messaging | undefined;
  #n = 0;

  constructor(inner: BrokerDriver, mode: MessagingMode, native?: NativeStores) {
    if (mode === 'full-native' && native === undefined) throw new Error('this engine keeps no receipts of its own');
    this.#inner = inner;
    this.#mode = mode;
    this.#native = native;
  }

  #contract(topic: string): BenchContract {
    let contract = this.#contracts.get(topic);
    if (contract === undefined) {
      contract = contractOf(topic);
      this.#contracts.set(topic, contract);
    }
    return contract;
  }

  #data(body: Buffer) {
    this.#n += 1;
    return { n: this.#n, sentAt: readStamp(body), pad: padFor(body.length) };
  }

  get #sender(): Messaging {
    this.#producer ??= createMessaging({ broker: this.#inner.broker, service: `${GROUP}-producer`, deadLetters: false });
    return this.#producer;
  }

  setup(topic: string): Promise<void> {
    return this.#inner.broker.declareGroup(messagesTopic(topic), GROUP);
  }

  async publish(topic: string, body: Buffer): Promise<void> {
    await this.#sender.send(this.#contract(topic), 'work', this.#data(body));
  }

  async publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    const contract = this.#contract(topic);
    for (let i = 0; i < bodies.length; i += 1000) {
      await this.#sender.sendBatch(
        contract,
        bodies.slice(i, i + 1000).map((body) => ({ name: 'work' as const, data: this.#data(body) })),
      );
    }
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const stamp = Buffer.alloc(8);
    const deadLetters: DeadLetterStore = createSqliteDeadLetterStore({ path: join(this.#dir, 'dead-letters.db') });
    let receipts: ReceiptStore | undefined;
    if (this.#mode === 'full') receipts = createSqliteReceiptStore({ path: join(this.#dir, 'receipts.db') });
    if (this.#mode === 'full-native') receipts = this.#native?.receipts();
    const consumer = createMessaging({
      broker: this.#inner.broker,
      service: GROUP,
      deadLetters,
      maxInFlight: options.maxInFlight,
      ...(receipts === undefined ? {} : { receipts }),
    });
    consumer.handle(this.#contract(topic), 'work', (data) => {
      stamp.writeDoubleLE(data.sentAt, 0);
      onMessage(stamp);
    });
    await consumer.start();
    return async () => {
      await consumer.close();
      await receipts?.close();
      await deadLetters.close();
    };
  }

  cleanup(topic: string): Promise<void> {
    return this.#inner.cleanup(messagesTopic(topic));
  }

  async dropScope(): Promise<void> {
    await this.#native?.drop();
    await this.#inner.dropScope();
  }

  async close(): Promise<void> {
    await this.#producer?.close();
    await this.#inner.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
