import type { JsMsg } from '@nats-io/jetstream';
import type { Delivery, Headers } from '@switchboard/core';
import { toBrokerError } from './errors.js';

type State = 'pending' | 'settled' | 'expired';

/** What a delivery needs from its subscription. */
export interface DeliveryOwner {
  /** Gives the delivery's slot back (once per delivery: on settle or on expiry). */
  release(delivery: NatsDelivery): void;
  /**
   * Sends `msg`'s ack with the others of this tick (one socket write) and resolves once the server
   * has received them (one flush round trip for all); undefined with `doubleAck`: each ack then
   * waits for JetStream's own reply.
   */
  readonly batchAck: ((msg: JsMsg) => Promise<void>) | undefined;
}

/**
 * One JetStream delivery. Settling is idempotent. After `ackTimeoutMs` the subscription expires it
 * locally (JetStream redelivers it on its own): its slot is freed, a late `ack` is still sent (the
 * work was done), a late `nack` is dropped (the message is already back).
 */
export class NatsDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly #msg: JsMsg;
  readonly #owner: DeliveryOwner;
  #state: State = 'pending';

  constructor(msg: JsMsg, fields: { id: string; topic: string; headers: Headers; key: string | undefined }, owner: DeliveryOwner) {
    this.id = fields.id;
    this.topic = fields.topic;
    this.headers = fields.headers;
    this.body = msg.data;
    if (fields.key !== undefined) this.key = fields.key;
    this.attempt = msg.info.deliveryCount;
    this.#msg = msg;
    this.#owner = owner;
  }

  get settled(): boolean {
    return this.#state !== 'pending';
  }

  async ack(): Promise<void> {
    if (this.#state === 'settled') return;
    if (this.#state === 'expired') {
      this.#state = 'settled';
      this.#msg.ack();
      return;
    }
    this.#state = 'settled';
    const batchAck = this.#owner.batchAck;
    try {
      if (batchAck === undefined) {
        await this.#msg.ackAck();
      } else {
        // A plain ack, its slot free at once; the returned promise waits for the shared flush.
        const sent = batchAck(this.#msg);
        this.#owner.release(this);
        await sent;
      }
    } catch (error) {
      throw toBrokerError(error, `ack of ${this.id}`);
    } finally {
      this.#owner.release(this);
    }
  }

  async nack(delayMs = 0): Promise<void> {
    if (this.#state !== 'pending') {
      this.#state = 'settled';
      return;
    }
    this.#state = 'settled';
    try {
      this.#msg.nak(delayMs > 0 ? Math.ceil(delayMs) : undefined);
    } finally {
      this.#owner.release(this);
    }
  }

  /** The local ack timeout passed: the slot is given back, JetStream will redeliver. */
  expire(): void {
    if (this.#state !== 'pending') return;
    this.#state = 'expired';
    this.#owner.release(this);
  }
}
