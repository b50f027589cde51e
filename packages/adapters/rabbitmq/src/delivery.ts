import { SwitchboardError } from '@switchboard/core';
import { TrackedDelivery } from '@switchboard/core/kit';
import type { Channel, ConsumeMessage } from 'amqplib';
import { fromAmqpProperties } from './binding.js';

/** What the deliveries of one channel share (one object per channel, not per delivery). */
export interface DeliveryContext {
  readonly channel: Channel;
  readonly topic: string;
  /** Parks the message in a delay queue (confirmed) so it comes back after `delayMs`. */
  readonly delay: (message: ConsumeMessage, attempt: number, delayMs: number) => Promise<void>;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One AMQP delivery, its bookkeeping kept by the subscription's `DeliveryTracker`. RabbitMQ has
 * no per-message ack deadline of its own, so at `ackTimeoutMs` the delivery is given back to the
 * queue here (`onExpired`), and a late `ack` or `nack` is a no-op.
 */
export class RabbitMqDelivery extends TrackedDelivery {
  readonly context: DeliveryContext;
  readonly #message: ConsumeMessage;

  constructor(message: ConsumeMessage, context: DeliveryContext) {
    const received = fromAmqpProperties(message.properties);
    const redeliveries = Math.max(received.deliveryCount ?? 0, message.fields.redelivered ? 1 : 0);
    const content = message.content;
    super({
      id: received.id,
      topic: context.topic,
      headers: received.headers,
      body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
      key: received.key,
      attempt: received.priorAttempts + redeliveries + 1,
    });
    this.context = context;
    this.#message = message;
  }

  /** The AMQP `reply-to` and `correlation-id` properties (a request made with direct reply-to). */
  get replyAddress(): { readonly replyTo: string; readonly correlationId: string } | undefined {
    const { replyTo, correlationId } = this.#message.properties;
    return typeof replyTo === 'string' && replyTo !== '' && typeof correlationId === 'string' && correlationId !== ''
      ? { replyTo, correlationId }
      : undefined;
  }

  protected settleAck(): Promise<void> {
    try {
      this.context.channel.ack(this.#message);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(unavailable(error, `ack of ${this.id || 'a message'}`));
    }
  }

  protected async settleNack(delayMs: number): Promise<void> {
    if (delayMs > 0) {
      try {
        await this.context.delay(this.#message, this.attempt, delayMs);
        this.context.channel.ack(this.#message);
        return;
      } catch {
        // The delay queue could not take it: fall back to an immediate requeue rather than lose it.
      }
    }
    try {
      this.context.channel.nack(this.#message, false, true);
    } catch (error) {
      throw unavailable(error, `nack of ${this.id || 'a message'}`);
    }
  }

  /** Requeues at once; on a channel already gone the server has requeued the message itself. */
  protected override giveBack(): Promise<void> {
    try {
      this.context.channel.nack(this.#message, false, true);
    } catch {
      // Channel closed: requeued by the server.
    }
    return RESOLVED;
  }

  /** The local ack timeout passed: the message goes back to the queue. */
  protected override onExpired(): void {
    void this.giveBack();
  }
}

function unavailable(error: unknown, action: string): SwitchboardError {
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', {
    detail: `${action}: the channel is closed; the server gives the message back for redelivery`,
    cause: error,
  });
}
