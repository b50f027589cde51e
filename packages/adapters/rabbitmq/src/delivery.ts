import type { Delivery, Headers } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { Channel, ConsumeMessage } from 'amqplib';

type State = 'pending' | 'settled' | 'expired';

/** What the deliveries of one channel share. */
export interface DeliveryContext {
  readonly channel: Channel;
  /** Parks the message in a delay queue (confirmed) so it comes back after `delayMs`. */
  readonly delay: (message: ConsumeMessage, attempt: number, delayMs: number) => Promise<void>;
  readonly onRelease: (delivery: RabbitMqDelivery) => void;
}

/**
 * One AMQP delivery. Settling is idempotent. Past `ackTimeoutMs` the subscription expires it: it is
 * given back to the queue (the server has no per-message ack deadline of its own), so a late `ack`
 * or `nack` is a no-op.
 */
export class RabbitMqDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly #message: ConsumeMessage;
  readonly #context: DeliveryContext;
  #state: State = 'pending';

  constructor(
    message: ConsumeMessage,
    fields: { id: string; topic: string; headers: Headers; key: string | undefined; attempt: number },
    context: DeliveryContext,
  ) {
    this.id = fields.id;
    this.topic = fields.topic;
    this.headers = fields.headers;
    this.body = new Uint8Array(message.content.buffer, message.content.byteOffset, message.content.byteLength);
    if (fields.key !== undefined) this.key = fields.key;
    this.attempt = fields.attempt;
    this.#message = message;
    this.#context = context;
  }

  get settled(): boolean {
    return this.#state !== 'pending';
  }

  async ack(): Promise<void> {
    if (!this.#settle()) return;
    try {
      this.#context.channel.ack(this.#message);
    } catch (error) {
      throw unavailable(error, `ack of ${this.id}`);
    } finally {
      this.#context.onRelease(this);
    }
  }

  async nack(delayMs = 0): Promise<void> {
    if (!this.#settle()) return;
    try {
      if (delayMs > 0) {
        try {
          await this.#context.delay(this.#message, this.attempt, delayMs);
          this.#context.channel.ack(this.#message);
          return;
        } catch {
          // The delay queue could not take it: fall back to an immediate requeue rather than lose it.
        }
      }
      this.#context.channel.nack(this.#message, false, true);
    } catch (error) {
      throw unavailable(error, `nack of ${this.id}`);
    } finally {
      this.#context.onRelease(this);
    }
  }

  /** Gives the message back without running the handler's settlement (close, timeout). */
  release(): void {
    if (!this.#settle()) return;
    try {
      this.#context.channel.nack(this.#message, false, true);
    } catch {
      // Channel already gone: the server has requeued the message itself.
    }
    this.#context.onRelease(this);
  }

  #settle(): boolean {
    if (this.#state !== 'pending') return false;
    this.#state = 'settled';
    return true;
  }

  /** The local ack timeout passed: the message goes back to the queue. */
  expire(): void {
    if (this.#state !== 'pending') return;
    this.release();
    this.#state = 'expired';
  }
}

function unavailable(error: unknown, action: string): SwitchboardError {
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', {
    detail: `${action}: the channel is closed; the server gives the message back for redelivery`,
    cause: error,
  });
}
