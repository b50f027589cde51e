import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { AckDeadlines } from '@switchboard/core/kit';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { type DeliveryContext, RabbitMqDelivery } from './delivery.js';
import { fromAmqpHeaders } from './headers.js';
import { idle } from './timers.js';

export interface RabbitMqSubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  readonly queue: string;
  readonly handler: DeliveryHandler;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly delay: (message: ConsumeMessage, attempt: number, delayMs: number) => Promise<void>;
  /** Declares the group's queue again (after a reconnect or a deleted queue). */
  readonly redeclare: () => Promise<void>;
  /** The live connection, if any. */
  readonly currentModel: () => ChannelModel | undefined;
  readonly onClosed: (subscription: RabbitMqSubscription) => void;
}

/**
 * A consumer on the group's queue, on its own channel with `prefetch = maxInFlight`, so the server
 * never has more unacknowledged deliveries out than that. Re-attached on every reconnect.
 */
export class RabbitMqSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #config: RabbitMqSubscriptionConfig;
  readonly #unsettled = new Set<RabbitMqDelivery>();
  readonly #deadlines: AckDeadlines<RabbitMqDelivery>;
  #running = 0;
  #onIdle: (() => void) | undefined;
  #channel: Channel | undefined;
  #consumerTag: string | undefined;
  #model: ChannelModel | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;

  constructor(config: RabbitMqSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#deadlines = new AckDeadlines(config.ackTimeoutMs, (delivery) => delivery.expire());
  }

  /** Opens a channel on `model` and starts consuming. */
  async attach(model: ChannelModel): Promise<void> {
    if (this.#stopping) return;
    this.#model = model;
    const channel = await model.createChannel();
    channel.on('error', () => {});
    channel.on('close', () => this.#onChannelClosed(channel));
    await channel.prefetch(this.#config.maxInFlight);
    const context: DeliveryContext = {
      channel,
      delay: this.#config.delay,
      onRelease: (settled) => {
        this.#unsettled.delete(settled);
        this.#deadlines.delete(settled);
      },
    };
    const { consumerTag } = await channel.consume(this.#config.queue, (message) => {
      if (message === null) this.#onCancelled(channel);
      else this.#dispatch(channel, context, message);
    });
    this.#channel = channel;
    this.#consumerTag = consumerTag;
  }

  #onChannelClosed(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    // The server requeued every unacked delivery of that channel; settling them now would fail.
    for (const delivery of [...this.#unsettled]) delivery.release();
    void this.#reattach();
  }

  /** The server cancelled the consumer (queue deleted): declare it again and resume. */
  #onCancelled(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    void channel.close().catch(() => {});
    void this.#reattach();
  }

  async #reattach(): Promise<void> {
    // Only when the connection itself is still up; a reconnect attaches every subscription anew.
    for (let failures = 0; !this.#stopping && this.#channel === undefined; failures++) {
      await idle(Math.min(2000, 50 * 2 ** failures));
      const model = this.#model;
      if (this.#stopping || model === undefined || this.#channel !== undefined) return;
      if (this.#config.currentModel() !== model) return;
      try {
        await this.#config.redeclare();
        await this.attach(model);
      } catch {
        // Try again after the pause.
      }
    }
  }

  #dispatch(channel: Channel, context: DeliveryContext, message: ConsumeMessage): void {
    if (this.#stopping) {
      try {
        channel.nack(message, false, true);
      } catch {
        // Channel gone: requeued by the server.
      }
      return;
    }
    const received = fromAmqpHeaders(message.properties.headers as Record<string, unknown> | undefined);
    const redeliveries = Math.max(received.deliveryCount ?? 0, message.fields.redelivered ? 1 : 0);
    const delivery = new RabbitMqDelivery(
      message,
      {
        id: typeof message.properties.messageId === 'string' ? message.properties.messageId : '',
        topic: this.topic,
        headers: received.headers,
        key: received.key,
        attempt: received.priorAttempts + redeliveries + 1,
      },
      context,
    );
    this.#unsettled.add(delivery);
    this.#deadlines.add(delivery);
    this.#running += 1;
    void this.#handle(delivery);
  }

  async #handle(delivery: RabbitMqDelivery): Promise<void> {
    try {
      await this.#config.handler(delivery);
    } catch {
      await delivery.nack().catch(() => {});
    } finally {
      this.#running -= 1;
      if (this.#running === 0) this.#onIdle?.();
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    const channel = this.#channel;
    if (channel !== undefined && this.#consumerTag !== undefined) await channel.cancel(this.#consumerTag).catch(() => {});
    if (this.#running > 0) {
      const drained = new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
      await Promise.race([drained, idle(this.#config.drainTimeoutMs)]);
    }
    for (const delivery of [...this.#unsettled]) delivery.release();
    this.#deadlines.clear();
    this.#channel = undefined;
    if (channel !== undefined) await channel.close().catch(() => {});
    this.#config.onClosed(this);
  }
}
