import { type DeliveryFields, TrackedDelivery } from '@switchboard/core/kit';
import type { QueueSettler } from './settle.js';

/** SQS caps a message's visibility at 12 hours from the receive (ChangeMessageVisibility). */
export const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * One receive of one SQS message: its receipt handle and until when SQS keeps it invisible. Held
 * (FIFO messages waiting for the one before them) and handed-out deliveries both have one, and the
 * subscription's heartbeat extends it until the message is settled.
 */
export class Lease {
  readonly handle: string;
  /** When this receive happened (the 12-hour visibility cap counts from here). */
  readonly receivedAt: number;
  /** Until when SQS keeps the message invisible, as far as we know. */
  visibleUntil: number;
  /** The handle stopped working (a heartbeat said so): the message is SQS's again. */
  lost = false;

  /**
   * `receivedAt`: when the receive was asked for (the 12-hour cap counts from no earlier than that);
   * `visibleUntil`: the answer's arrival plus the visibility asked for (SQS started the clock just
   * before it answered; renewals come a third of the lease early, which covers the difference).
   */
  constructor(handle: string, receivedAt: number, visibleUntil: number) {
    this.handle = handle;
    this.receivedAt = receivedAt;
    this.visibleUntil = visibleUntil;
  }

  /** Seconds of visibility still allowed from `now` under the 12-hour cap (0 when none). */
  remainingSeconds(now: number): number {
    return Math.max(0, MAX_VISIBILITY_SECONDS - Math.ceil((now - this.receivedAt) / 1000) - 1);
  }
}

/** How a delivery ended, as its group's FIFO chain needs to know. */
export type Outcome = 'acked' | 'nacked' | 'released' | 'expired' | 'lost' | 'failed';

export interface DeliveryContext {
  readonly settler: QueueSettler;
  readonly report: (error: unknown, action: string) => void;
  /** The heartbeat renewing `lease` right now, if any: a settle waits for it, so a late renewal cannot hide a nacked message again. */
  readonly beat: (lease: Lease) => Promise<void> | undefined;
}

/**
 * A delivery from an SQS queue. `ack` deletes the message (batched `DeleteMessageBatch`, resolved
 * once SQS confirmed); `nack(delay)` sets its visibility to the delay (whole seconds, rounded up,
 * within the 12-hour cap), which keeps the MessageId and the receive count, so SQS's redrive to the
 * dead-letter queue still counts; a release sets it to 0. Past the ack timeout the message is made
 * visible at once, and a late settle does nothing. A lost receipt handle aborts `signal`.
 */
export class SqsDelivery extends TrackedDelivery {
  readonly lease: Lease;
  readonly #context: DeliveryContext;
  readonly #abort = new AbortController();
  readonly #outcome: Promise<Outcome>;
  #resolve!: (outcome: Outcome) => void;

  constructor(fields: DeliveryFields, lease: Lease, context: DeliveryContext) {
    super(fields);
    this.lease = lease;
    this.#context = context;
    this.#outcome = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  /** Aborted when the receipt handle is lost: the message is back on the queue and the handler's work may run twice. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** How this delivery ended on SQS (an ack counts once SQS confirmed the delete). */
  get outcome(): Promise<Outcome> {
    return this.#outcome;
  }

  /** A heartbeat found the handle no longer valid: the delivery expires (its slot is free, a late settle does nothing). */
  markLost(): void {
    this.lease.lost = true;
    this.#abort.abort(new Error('the SQS receipt handle is no longer valid; the message is visible again'));
    this.expire();
  }

  protected async settleAck(): Promise<void> {
    await this.#context.beat(this.lease);
    try {
      const result = await this.#context.settler.delete(this.lease.handle);
      this.#resolve(result === 'done' ? 'acked' : 'lost');
    } catch (error) {
      this.#resolve('failed');
      throw error;
    }
  }

  protected async settleNack(delayMs: number): Promise<void> {
    await this.#context.beat(this.lease);
    const seconds = Math.min(Math.ceil(delayMs / 1000), this.lease.remainingSeconds(Date.now()));
    try {
      await this.#context.settler.visibility(this.lease.handle, seconds);
      this.#resolve('nacked');
    } catch (error) {
      this.#resolve('failed');
      throw error;
    }
  }

  protected override async giveBack(): Promise<void> {
    await this.#context.beat(this.lease);
    try {
      await this.#context.settler.visibility(this.lease.handle, 0);
    } finally {
      this.#resolve('released');
    }
  }

  protected override onExpired(): void {
    if (this.lease.lost) {
      this.#resolve('lost');
      return;
    }
    this.#resolve('expired');
    Promise.resolve(this.#context.beat(this.lease))
      .then(() => this.#context.settler.visibility(this.lease.handle, 0))
      .catch((error: unknown) => this.#context.report(error, 'release after the ack timeout'));
  }
}
