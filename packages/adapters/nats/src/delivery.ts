import type { JsMsg } from '@nats-io/jetstream';
import type { Delivery, Headers } from '@switchboard/core';
import { toBrokerError } from './errors.js';

type State = 'pending' | 'settled' | 'expired';

/**
 * One JetStream delivery. Settling is idempotent. After `ackTimeoutMs` the delivery expires
 * locally (JetStream redelivers it on its own): its slot is freed, a late `ack` is still sent
 * (the work was done), a late `nack` is dropped (the message is already back).
 */
export class NatsDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly #msg: JsMsg;
  readonly #onRelease: () => void;
  readonly #timer: NodeJS.Timeout;
  #state: State = 'pending';

  constructor(
    msg: JsMsg,
    fields: { id: string; topic: string; headers: Headers; key: string | undefined },
    ackTimeoutMs: number,
    onRelease: () => void,
  ) {
    this.id = fields.id;
    this.topic = fields.topic;
    this.headers = fields.headers;
    this.body = msg.data;
    if (fields.key !== undefined) this.key = fields.key;
    this.attempt = msg.info.deliveryCount;
    this.#msg = msg;
    this.#onRelease = onRelease;
    this.#timer = setTimeout(() => this.#expire(), ackTimeoutMs);
    this.#timer.unref();
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
    this.#settle();
    try {
      await this.#msg.ackAck();
    } catch (error) {
      throw toBrokerError(error, `ack of ${this.id}`);
    } finally {
      this.#onRelease();
    }
  }

  async nack(delayMs = 0): Promise<void> {
    if (this.#state !== 'pending') {
      this.#state = 'settled';
      return;
    }
    this.#settle();
    try {
      this.#msg.nak(delayMs > 0 ? Math.ceil(delayMs) : undefined);
    } finally {
      this.#onRelease();
    }
  }

  #settle(): void {
    this.#state = 'settled';
    clearTimeout(this.#timer);
  }

  #expire(): void {
    if (this.#state !== 'pending') return;
    this.#state = 'expired';
    this.#onRelease();
  }
}
