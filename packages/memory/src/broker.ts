import type {
  Broker,
  BrokerCapabilities,
  Delivery,
  DeliveryHandler,
  Headers,
  OutgoingMessage,
  SubscribeOptions,
  Subscription,
} from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import { resolveSubscribeOptions } from '@switchboard/core/kit';

export interface MemoryBrokerOptions {
  /** Largest body accepted, in bytes. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** How long `Subscription.close` waits for running handlers before releasing their deliveries. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
}

/** Deliveries handed out per dispatch turn before yielding to the event loop. */
const DISPATCH_TURN = 2048;
const RESOLVED: Promise<void> = Promise.resolve();

/** A message as stored: copied at publish, shared by every group. */
interface StoredMessage {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key: string | undefined;
}

/** A message's place in one group. */
interface Entry {
  readonly message: StoredMessage;
  attempt: number;
}

/** A FIFO of entries that can also take entries back at the front (nacks), without per-item allocation. */
class EntryQueue {
  #items: (Entry | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(entry: Entry): void {
    this.#items.push(entry);
  }

  unshift(entry: Entry): void {
    if (this.#head > 0) {
      this.#head -= 1;
      this.#items[this.#head] = entry;
    } else {
      this.#items.unshift(entry);
    }
  }

  shift(): Entry | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const entry = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  drain(): Entry[] {
    const rest = this.#items.slice(this.#head) as Entry[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

class MemoryDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly entry: Entry;
  readonly deadline: number;
  readonly #subscription: MemorySubscription;
  /** Set once acked, nacked, timed out or released: later settles are no-ops. */
  done = false;

  constructor(entry: Entry, subscription: MemorySubscription, deadline: number) {
    const message = entry.message;
    this.id = message.id;
    this.topic = message.topic;
    this.headers = message.headers;
    this.body = message.body;
    if (message.key !== undefined) this.key = message.key;
    this.attempt = entry.attempt;
    this.entry = entry;
    this.deadline = deadline;
    this.#subscription = subscription;
  }

  ack(): Promise<void> {
    if (!this.done) this.#subscription.settle(this, 'ack', 0);
    return RESOLVED;
  }

  nack(delayMs = 0): Promise<void> {
    if (!this.done) this.#subscription.settle(this, 'nack', delayMs);
    return RESOLVED;
  }
}

/** A consumer group of one topic: its queue, its subscribers, per-key ownership and delayed redeliveries. */
class Group {
  readonly queue = new EntryQueue();
  readonly subscribers: MemorySubscription[] = [];
  /** Per-key ordering: the one outstanding entry of each key, and the entries waiting behind it. */
  readonly #owners = new Map<string, Entry>();
  readonly #waiting = new Map<string, Entry[]>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #next = 0;
  #scheduled = false;
  #closed = false;

  enqueue(entry: Entry): void {
    this.queue.push(entry);
    this.schedule();
  }

  /** Puts an entry back at the front (nack, timeout, release); after `delayMs` if given. */
  requeue(entry: Entry, delayMs: number): void {
    if (this.#closed) return;
    if (delayMs > 0) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.requeue(entry, 0);
      }, delayMs);
      timer.unref();
      this.#timers.add(timer);
      return;
    }
    this.queue.unshift(entry);
    this.schedule();
  }

  /** The entry is done for this group: let the next entry of its key go. */
  finished(entry: Entry): void {
    const key = entry.message.key;
    if (key === undefined || this.#owners.get(key) !== entry) return;
    const waiting = this.#waiting.get(key);
    const next = waiting?.shift();
    if (next === undefined) {
      this.#owners.delete(key);
      this.#waiting.delete(key);
      return;
    }
    if (waiting!.length === 0) this.#waiting.delete(key);
    this.#owners.set(key, next);
    this.queue.unshift(next);
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(this.#dispatch);
  }

  readonly #dispatch = (): void => {
    this.#scheduled = false;
    let handed = 0;
    while (this.queue.length > 0 && this.subscribers.length > 0) {
      const subscriber = this.#pickSubscriber();
      if (subscriber === undefined) return;
      const entry = this.queue.shift()!;
      const key = entry.message.key;
      if (key !== undefined) {
        const owner = this.#owners.get(key);
        if (owner === undefined) {
          this.#owners.set(key, entry);
        } else if (owner !== entry) {
          const waiting = this.#waiting.get(key);
          if (waiting === undefined) this.#waiting.set(key, [entry]);
          else waiting.push(entry);
          continue;
        }
      }
      subscriber.deliver(entry);
      handed += 1;
      if (handed >= DISPATCH_TURN) {
        this.#scheduled = true;
        setImmediate(this.#dispatch);
        return;
      }
    }
  };

  #pickSubscriber(): MemorySubscription | undefined {
    const count = this.subscribers.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#next + i) % count;
      const subscriber = this.subscribers[index]!;
      if (subscriber.hasCapacity()) {
        this.#next = (index + 1) % count;
        return subscriber;
      }
    }
    return undefined;
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

class MemorySubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #groupState: Group;
  readonly #handler: DeliveryHandler;
  readonly #maxInFlight: number;
  readonly #ackTimeoutMs: number;
  readonly #drainTimeoutMs: number;
  readonly #onClosed: (subscription: MemorySubscription) => void;
  /** Unsettled deliveries in hand-out order, which is also deadline order. */
  readonly #unsettled = new Set<MemoryDelivery>();
  #running = 0;
  #idle: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    topic: string,
    group: string,
    groupState: Group,
    handler: DeliveryHandler,
    limits: { maxInFlight: number; ackTimeoutMs: number; drainTimeoutMs: number },
    onClosed: (subscription: MemorySubscription) => void,
  ) {
    this.topic = topic;
    this.group = group;
    this.#groupState = groupState;
    this.#handler = handler;
    this.#maxInFlight = limits.maxInFlight;
    this.#ackTimeoutMs = limits.ackTimeoutMs;
    this.#drainTimeoutMs = limits.drainTimeoutMs;
    this.#onClosed = onClosed;
  }

  hasCapacity(): boolean {
    return this.#closing === undefined && this.#unsettled.size < this.#maxInFlight;
  }

  deliver(entry: Entry): void {
    entry.attempt += 1;
    const delivery = new MemoryDelivery(entry, this, Date.now() + this.#ackTimeoutMs);
    this.#unsettled.add(delivery);
    if (this.#timer === undefined) this.#armTimer(this.#ackTimeoutMs);
    this.#running += 1;
    let result: Promise<void>;
    try {
      result = this.#handler(delivery);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      () => this.#handlerDone(),
      () => {
        if (!delivery.done) this.settle(delivery, 'nack', 0);
        this.#handlerDone();
      },
    );
  }

  settle(delivery: MemoryDelivery, outcome: 'ack' | 'nack' | 'release', delayMs: number): void {
    delivery.done = true;
    this.#unsettled.delete(delivery);
    if (outcome === 'ack') this.#groupState.finished(delivery.entry);
    else this.#groupState.requeue(delivery.entry, Math.max(0, delayMs));
    if (this.#closing === undefined) this.#groupState.schedule();
  }

  #handlerDone(): void {
    this.#running -= 1;
    if (this.#running === 0) this.#idle?.();
  }

  #armTimer(ms: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, ms));
    this.#timer.unref();
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    for (const delivery of this.#unsettled) {
      if (delivery.deadline > now) {
        this.#armTimer(delivery.deadline - now);
        return;
      }
      this.settle(delivery, 'release', 0);
    }
  };

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#onClosed(this);
    if (this.#running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, this.#drainTimeoutMs);
      });
      clearTimeout(timer);
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const delivery of [...this.#unsettled]) this.settle(delivery, 'release', 0);
    this.#groupState.schedule();
  }
}

class MemoryBroker implements Broker {
  readonly name = 'memory';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #topics = new Map<string, Map<string, Group>>();
  readonly #subscriptions = new Set<MemorySubscription>();
  readonly #drainTimeoutMs: number;
  #closed: Promise<void> | undefined;

  constructor(options: MemoryBrokerOptions) {
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: false,
      multiProcess: false,
      ordering: 'per-key',
      delayedRedelivery: false,
      publishDeduplication: false,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
    };
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  }

  publish(message: OutgoingMessage): Promise<void> {
    try {
      this.#accept(message);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    try {
      this.#assertOpen();
      for (const message of messages) this.#checkSize(message);
      for (const message of messages) this.#accept(message);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #accept(message: OutgoingMessage): void {
    this.#assertOpen();
    this.#checkSize(message);
    const groups = this.#topics.get(message.topic);
    if (groups === undefined || groups.size === 0) return;
    const stored: StoredMessage = {
      id: message.id,
      topic: message.topic,
      headers: Object.freeze({ ...message.headers }),
      body: Buffer.from(message.body),
      key: message.key,
    };
    for (const group of groups.values()) group.enqueue({ message: stored, attempt: 0 });
  }

  #checkSize(message: OutgoingMessage): void {
    if (message.body.byteLength > this.capabilities.maxMessageBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `${message.body.byteLength} bytes; the memory broker takes at most ${this.capabilities.maxMessageBytes}`,
      });
    }
  }

  #assertOpen(): void {
    if (this.#closed !== undefined) throw new SwitchboardError('SB_CLOSED', { detail: 'the memory broker is closed' });
  }

  #group(topic: string, group: string): Group {
    let groups = this.#topics.get(topic);
    if (groups === undefined) {
      groups = new Map();
      this.#topics.set(topic, groups);
    }
    let state = groups.get(group);
    if (state === undefined) {
      state = new Group();
      groups.set(group, state);
    }
    return state;
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen();
    this.#group(topic, group);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen();
    const limits = resolveSubscribeOptions(options);
    const group = this.#group(options.topic, options.group);
    const subscription = new MemorySubscription(
      options.topic,
      options.group,
      group,
      handler,
      { ...limits, drainTimeoutMs: this.#drainTimeoutMs },
      (closed) => {
        this.#subscriptions.delete(closed);
        const index = group.subscribers.indexOf(closed);
        if (index >= 0) group.subscribers.splice(index, 1);
      },
    );
    this.#subscriptions.add(subscription);
    group.subscribers.push(subscription);
    group.schedule();
    return subscription;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    for (const groups of this.#topics.values()) for (const group of groups.values()) group.close();
    this.#topics.clear();
  }
}

/**
 * The in-memory reference broker: one process, nothing persisted, fast. Every group keeps its
 * queue in memory; per-key ordering holds one message per key in flight at a time.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): Broker {
  return new MemoryBroker(options);
}
