import type { Delivery, DeliveryHandler, Headers, Subscription } from './broker.js';

/** Why an at-most-once delivery was dropped (the transport says which of these it can report) without reaching (or finishing in) a handler. */
export type DropReason =
  /** More than `maxPending` deliveries were waiting for a free `maxInFlight` slot. */
  | 'overflow'
  /** The handler rejected: nothing is redelivered on an at-most-once transport. */
  | 'handler-failed'
  /** The subscription closed (after its drain timeout) with the delivery still waiting. */
  | 'closed'
  /** The bytes on the channel are not a Switchboard frame (published by something else). */
  | 'malformed'
  /** Several members share the group and the claim that decides which one handles it failed. */
  | 'claim-failed';

export interface DroppedDelivery {
  readonly topic: string;
  readonly group: string;
  readonly id: string;
  readonly reason: DropReason;
  readonly error?: unknown;
}

export interface PushSubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  readonly handler: DeliveryHandler;
  readonly maxInFlight: number;
  readonly maxPending: number;
  readonly drainTimeoutMs: number;
  readonly onDrop: ((drop: DroppedDelivery) => void) | undefined;
  /** Stops the server from sending more (unsubscribe); resolves once it has. */
  readonly stop: () => Promise<void>;
  readonly onClosed: (subscription: PushSubscription) => void;
}

/**
 * The local side of an at-most-once subscription, shared by the push transports (core NATS, Redis
 * pub/sub, MQTT): the adapter `push`es what the server sends; at most `maxInFlight` handlers run at
 * once, the rest wait in a FIFO of at most `maxPending` deliveries (an older one is never
 * overtaken). A delivery holds its slot while its handler runs; `ack` and `nack` are no-ops.
 * Whatever is dropped (overflow, a failed handler, close) is told to `onDrop`.
 */
export class PushSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #config: PushSubscriptionConfig;
  #queue: Delivery[] = [];
  #head = 0;
  #running = 0;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #stopped = false;

  constructor(config: PushSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
  }

  /** Hands a delivery to the handler, or queues it while every slot is taken. */
  push(delivery: Delivery): void {
    if (this.#stopped) {
      this.#drop(delivery, 'closed');
      return;
    }
    if (this.#running < this.#config.maxInFlight) {
      this.#run(delivery);
      return;
    }
    if (this.#queue.length - this.#head >= this.#config.maxPending) {
      this.#drop(delivery, 'overflow');
      return;
    }
    this.#queue.push(delivery);
  }

  /** Reports a delivery dropped before it could be pushed. */
  dropped(delivery: Pick<Delivery, 'id'>, reason: DropReason, error?: unknown): void {
    this.#drop(delivery, reason, error);
  }

  #run(delivery: Delivery): void {
    this.#running++;
    let pending: Promise<void>;
    try {
      pending = this.#config.handler(delivery);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(this.#done, (error: unknown) => {
      this.#drop(delivery, 'handler-failed', error);
      this.#done();
    });
  }

  readonly #done = (): void => {
    this.#running--;
    if (this.#head < this.#queue.length) {
      const next = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Delivery;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#run(next);
      return;
    }
    if (this.#running === 0) this.#idle?.();
  };

  #drop(delivery: Pick<Delivery, 'id'>, reason: DropReason, error?: unknown): void {
    const onDrop = this.#config.onDrop;
    if (onDrop === undefined) return;
    try {
      onDrop({ topic: this.topic, group: this.group, id: delivery.id, reason, ...(error === undefined ? {} : { error }) });
    } catch {
      // A failing drop observer must not break the subscription.
    }
  }

  /**
   * Stops receiving, lets the running handlers and the queued deliveries finish (up to the drain
   * timeout), then drops what is left: an at-most-once transport has nothing to release them to.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#config.stop().catch(() => {});
    if (this.#running > 0) {
      const drained = new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
      await Promise.race([drained, idle(this.#config.drainTimeoutMs)]);
    }
    this.#stopped = true;
    for (let i = this.#head; i < this.#queue.length; i++) this.#drop(this.#queue[i]!, 'closed');
    this.#queue = [];
    this.#head = 0;
    this.#config.onClosed(this);
  }
}

function idle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** What a push transport reads from a received message's headers. */
export interface ReceivedFields {
  readonly id: string;
  readonly headers: Headers;
  readonly key: string | undefined;
}

const SETTLED: Promise<void> = Promise.resolve();

/**
 * A delivery of an at-most-once push transport: its MessageId, headers and key are read from the
 * transport's headers on first use (many hot paths read them once, some never); `attempt` is
 * always 1 and `ack` / `nack` are no-ops, since nothing is ever redelivered.
 */
export abstract class AtMostOnceDelivery implements Delivery {
  readonly topic: string;
  readonly body: Uint8Array;
  readonly attempt = 1;
  #fields: ReceivedFields | undefined;

  constructor(topic: string, body: Uint8Array) {
    this.topic = topic;
    this.body = body;
  }

  /** Reads the fields from the transport's own headers (called at most once). */
  protected abstract readFields(): ReceivedFields;

  get id(): string {
    this.#fields ??= this.readFields();
    return this.#fields.id;
  }

  get headers(): Headers {
    this.#fields ??= this.readFields();
    return this.#fields.headers;
  }

  get key(): string | undefined {
    this.#fields ??= this.readFields();
    return this.#fields.key;
  }

  ack(): Promise<void> {
    return SETTLED;
  }

  nack(): Promise<void> {
    return SETTLED;
  }
}
