import { randomBytes } from 'node:crypto';
import type { Delivery, OutgoingMessage } from '@switchboard/core';
import { newMessageId } from '@switchboard/core';

/** A fresh name made of `[a-z0-9-]`, safe as a topic, group, queue, stream or table suffix on every engine. */
export function randomName(prefix = 'sb'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** An outgoing message with a new MessageId, a small UTF-8 body and no headers unless given. */
export function testMessage(topic: string, overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: newMessageId(),
    topic,
    headers: {},
    body: new TextEncoder().encode(`message ${Math.random()}`),
    ...overrides,
  };
}

/** Resolves once `predicate` is true, checking every `intervalMs`; rejects with `description` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, description: string, timeoutMs = 10_000, intervalMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${description}`);
    await delay(intervalMs);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return {
    promise,
    resolve(value) {
      settled = true;
      resolve(value);
    },
    reject(reason) {
      settled = true;
      reject(reason);
    },
    get settled() {
      return settled;
    },
  };
}

/** One delivery as seen by a test handler, with the time the handler was called. */
export interface RecordedDelivery {
  readonly delivery: Delivery;
  readonly at: number;
}

/**
 * Collects deliveries for assertions. `handler` records each one and then runs `onDelivery` (ack
 * by default). `ids()` lists MessageIds in arrival order, `unique()` the distinct ones.
 */
export class DeliveryRecorder {
  readonly received: RecordedDelivery[] = [];
  readonly #onDelivery: (delivery: Delivery) => Promise<void>;

  constructor(onDelivery: (delivery: Delivery) => Promise<void> = (delivery) => delivery.ack()) {
    this.#onDelivery = onDelivery;
  }

  readonly handler = async (delivery: Delivery): Promise<void> => {
    this.received.push({ delivery, at: Date.now() });
    await this.#onDelivery(delivery);
  };

  get count(): number {
    return this.received.length;
  }

  ids(): string[] {
    return this.received.map((r) => r.delivery.id);
  }

  unique(): Set<string> {
    return new Set(this.ids());
  }

  /** MessageIds that arrived more than once. */
  duplicates(): string[] {
    const seen = new Set<string>();
    const dup: string[] = [];
    for (const id of this.ids()) {
      if (seen.has(id)) dup.push(id);
      seen.add(id);
    }
    return dup;
  }

  waitForCount(count: number, timeoutMs?: number): Promise<void> {
    return waitFor(() => this.received.length >= count, `${count} deliveries (have ${this.received.length})`, timeoutMs);
  }

  waitForUnique(count: number, timeoutMs?: number): Promise<void> {
    return waitFor(() => this.unique().size >= count, `${count} distinct messages (have ${this.unique().size})`, timeoutMs);
  }

  /** Waits until every one of these MessageIds has arrived (a count would be fooled by extras). */
  waitForIds(ids: Iterable<string>, timeoutMs?: number): Promise<void> {
    const wanted = [...ids];
    const missing = () => {
      const seen = this.unique();
      return wanted.filter((id) => !seen.has(id)).length;
    };
    return waitFor(() => missing() === 0, `${wanted.length} given messages (${missing()} missing)`, timeoutMs);
  }
}
