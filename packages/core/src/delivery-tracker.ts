import { AckDeadlines } from './ack-deadlines.js';
import type { Delivery, DeliveryHandler, Headers } from './broker.js';

/** What a delivery carries, as an adapter read it from the engine. */
export interface DeliveryFields {
  /** The transport's message id (a hint for the engine's own dedup; the MessageId is the CloudEvent `id`). */
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string | undefined;
  readonly attempt: number;
}

type State = 'pending' | 'settled' | 'expired';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One delivery of an at-least-once subscription, its bookkeeping kept by a {@link DeliveryTracker}.
 * A subclass says how its engine acknowledges, gives back with a delay, and releases a message;
 * this class makes settling idempotent, frees the delivery's slot exactly once, and turns a settle
 * that comes after the ack deadline into a no-op (the engine redelivers the message by then).
 */
export abstract class TrackedDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  #state: State = 'pending';
  #settling: Promise<void> | undefined;
  #tracker: DeliveryTracker<TrackedDelivery> | undefined;

  constructor(fields: DeliveryFields) {
    this.id = fields.id;
    this.topic = fields.topic;
    this.headers = fields.headers;
    this.body = fields.body;
    if (fields.key !== undefined) this.key = fields.key;
    this.attempt = fields.attempt;
  }

  /** Acked, nacked, released or expired. */
  get settled(): boolean {
    return this.#state !== 'pending';
  }

  /** The ack deadline passed before the handler settled it. */
  get expired(): boolean {
    return this.#state === 'expired';
  }

  ack(): Promise<void> {
    if (!this.#settle()) return this.#settling ?? RESOLVED;
    this.#settling = this.settleAck();
    return this.#settling;
  }

  nack(delayMs = 0): Promise<void> {
    if (!this.#settle()) return this.#settling ?? RESOLVED;
    this.#settling = this.settleNack(Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs) : 0);
    return this.#settling;
  }

  /** Gives the message back for redelivery without a handler's decision (close, a lost channel). Idempotent. */
  release(): Promise<void> {
    if (!this.#settle()) return this.#settling ?? RESOLVED;
    this.#settling = this.giveBack();
    return this.#settling;
  }

  /** The subscription's tracker took this delivery (called once, by `DeliveryTracker.dispatch`). */
  attach(tracker: DeliveryTracker<TrackedDelivery>): void {
    this.#tracker = tracker;
  }

  /** The ack deadline passed: the slot is freed and `onExpired` runs; a later settle does nothing. */
  expire(): void {
    if (this.#state !== 'pending') return;
    this.#state = 'expired';
    this.#tracker?.detach(this);
    this.onExpired();
  }

  #settle(): boolean {
    if (this.#state !== 'pending') return false;
    this.#state = 'settled';
    this.#tracker?.detach(this);
    return true;
  }

  /** Acknowledges on the engine: the message is done for this group. */
  protected abstract settleAck(): Promise<void>;
  /** Gives the message back on the engine, to be delivered again after `delayMs` (0: at once). */
  protected abstract settleNack(delayMs: number): Promise<void>;
  /** Gives the message back at once on close or loss; by default a `settleNack(0)`. */
  protected giveBack(): Promise<void> {
    return this.settleNack(0);
  }
  /**
   * What the engine needs when the ack deadline passes. Nothing, by default: engines with their own
   * redelivery timer (JetStream ack wait, XAUTOCLAIM, leases) take the message back themselves;
   * an engine without one (RabbitMQ) gives it back here.
   */
  protected onExpired(): void {}
}

export interface DeliveryTrackerOptions {
  /** Most deliveries handed out and not yet settled (or expired). */
  readonly maxInFlight: number;
  /** How long a delivery may stay unsettled before it expires (see `TrackedDelivery.onExpired`). */
  readonly ackTimeoutMs: number;
  readonly handler: DeliveryHandler;
  /** Failures nobody awaits: a nack after a handler threw, a release on close. */
  readonly report?: (error: unknown, action: string) => void;
}

interface CapacityWaiter {
  readonly min: number;
  readonly resolve: () => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * The delivery bookkeeping every at-least-once subscription shares, whatever its engine: the
 * in-flight slots (`maxInFlight`), the set of unsettled deliveries, their ack deadlines (one timer
 * for all, see {@link AckDeadlines}), the handler runs (a handler that rejects without settling
 * nacks its delivery), and the drain on close (running handlers get `drainTimeoutMs`, whatever is
 * still unsettled is released for redelivery, never lost). The adapter's receive loop asks for
 * capacity, reads that many messages from its engine and `dispatch`es them.
 */
export class DeliveryTracker<D extends TrackedDelivery> {
  readonly maxInFlight: number;
  readonly #handler: DeliveryHandler;
  readonly #report: (error: unknown, action: string) => void;
  readonly #unsettled = new Set<D>();
  readonly #deadlines: AckDeadlines<D>;
  #waiters: CapacityWaiter[] = [];
  #running = 0;
  #idle: (() => void) | undefined;
  #closing = false;

  constructor(options: DeliveryTrackerOptions) {
    this.maxInFlight = options.maxInFlight;
    this.#handler = options.handler;
    this.#report = options.report ?? (() => {});
    this.#deadlines = new AckDeadlines(options.ackTimeoutMs, (delivery) => delivery.expire());
  }

  /** Slots free for new deliveries (0 once closing). */
  get free(): number {
    return this.#closing ? 0 : this.maxInFlight - this.#unsettled.size;
  }

  /** Deliveries handed out and neither settled nor expired. */
  get unsettled(): number {
    return this.#unsettled.size;
  }

  /** Handlers still running (an expired delivery's handler included). */
  get running(): number {
    return this.#running;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Resolves once at least `min` slots are free, or the tracker is closing. With `orAfterMs`, it
   * also resolves once at least one slot is free and that long has passed (so deliveries held
   * unsettled never keep the free slots idle for long).
   */
  waitForCapacity(min = 1, orAfterMs?: number): Promise<void> {
    const wanted = Math.min(Math.max(1, min), this.maxInFlight);
    if (this.#closing || this.free >= wanted) return RESOLVED;
    return new Promise<void>((resolve) => {
      const waiter: CapacityWaiter = { min: wanted, resolve, timer: undefined };
      if (orAfterMs !== undefined) {
        waiter.timer = setTimeout(() => {
          waiter.timer = undefined;
          if (this.free >= 1) this.#wake(waiter);
          else (waiter as { min: number }).min = 1;
        }, orAfterMs);
        waiter.timer.unref();
      }
      this.#waiters.push(waiter);
    });
  }

  /** Takes a slot for `delivery`, starts its ack deadline and runs the handler. */
  dispatch(delivery: D): void {
    delivery.attach(this as unknown as DeliveryTracker<TrackedDelivery>);
    this.#unsettled.add(delivery);
    this.#deadlines.add(delivery);
    this.#running += 1;
    let run: Promise<void>;
    try {
      run = this.#handler(delivery);
    } catch (error) {
      run = Promise.reject(error);
    }
    run.then(this.#handlerDone, (error: unknown) => this.#handlerFailed(delivery, error));
  }

  readonly #handlerDone = (): void => {
    this.#running -= 1;
    if (this.#running === 0) this.#idle?.();
  };

  #handlerFailed(delivery: D, error: unknown): void {
    if (!delivery.settled) {
      delivery.nack(0).catch((nackError: unknown) => this.#report(nackError, 'nack after a handler failure'));
    } else if (!delivery.expired) {
      this.#report(error, 'handler');
    }
    this.#handlerDone();
  }

  /** The delivery left the unsettled set (settled or expired): its slot is free again. Called by `TrackedDelivery`. */
  detach(delivery: TrackedDelivery): void {
    if (!this.#unsettled.delete(delivery as D)) return;
    this.#deadlines.delete(delivery as D);
    if (this.#waiters.length > 0) this.#wakeReady();
  }

  #wakeReady(): void {
    const free = this.free;
    for (const waiter of [...this.#waiters]) if (free >= waiter.min) this.#wake(waiter);
  }

  #wake(waiter: CapacityWaiter): void {
    const at = this.#waiters.indexOf(waiter);
    if (at === -1) return;
    this.#waiters.splice(at, 1);
    clearTimeout(waiter.timer);
    waiter.resolve();
  }

  /** Every unsettled delivery, oldest first. */
  deliveries(): D[] {
    return [...this.#unsettled];
  }

  /**
   * Stops handing out capacity, waits up to `drainTimeoutMs` for running handlers, then releases
   * every delivery still unsettled (the engine delivers them again, to this group's other consumers
   * or the next start). Resolves once the releases did.
   */
  async close(drainTimeoutMs: number): Promise<void> {
    this.#closing = true;
    for (const waiter of [...this.#waiters]) this.#wake(waiter);
    if (this.#running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, drainTimeoutMs);
        timer.unref();
      });
      clearTimeout(timer);
      this.#idle = undefined;
    }
    this.#deadlines.clear();
    const left = [...this.#unsettled];
    await Promise.all(left.map((delivery) => delivery.release().catch((error: unknown) => this.#report(error, 'release on close'))));
  }
}
