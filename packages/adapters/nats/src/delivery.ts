import type { JsMsg } from '@nats-io/jetstream';
import type { Headers } from '@switchboard/core';
import { TrackedDelivery } from '@switchboard/core/kit';
import { natsErrors } from './connection.js';

/**
 * Sends `msg`'s ack with the others of this tick (one socket write) and resolves once the server
 * has received them (one flush round trip for all); undefined with `doubleAck`: each ack then waits
 * for JetStream's own reply.
 */
export type BatchAck = (msg: JsMsg) => Promise<void>;

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One JetStream delivery, its bookkeeping kept by the subscription's `DeliveryTracker`. Its slot
 * is free as soon as it is settled (an ack waits for the shared flush afterwards). After
 * `ackTimeoutMs` it expires locally: JetStream's own ack wait (the same length) redelivers it, so
 * nothing is sent, and a late `ack` or `nack` is a no-op.
 */
export class NatsDelivery extends TrackedDelivery {
  readonly #msg: JsMsg;
  readonly #batchAck: BatchAck | undefined;

  constructor(
    msg: JsMsg,
    fields: { id: string; topic: string; headers: Headers; key: string | undefined },
    batchAck: BatchAck | undefined,
  ) {
    super({
      id: fields.id,
      topic: fields.topic,
      headers: fields.headers,
      body: msg.data,
      key: fields.key,
      attempt: msg.info.deliveryCount,
    });
    this.#msg = msg;
    this.#batchAck = batchAck;
  }

  protected settleAck(): Promise<void> {
    if (this.#batchAck !== undefined) return this.#batchAck(this.#msg);
    return this.#msg.ackAck().then(
      () => {},
      (error: unknown) => {
        throw natsErrors.toBrokerError(error, `ack of ${this.id}`);
      },
    );
  }

  protected settleNack(delayMs: number): Promise<void> {
    try {
      this.#msg.nak(delayMs > 0 ? delayMs : undefined);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(natsErrors.toBrokerError(error, `nack of ${this.id}`));
    }
  }
}
