import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { DeliveryTracker, idle } from '@switchboard/core/kit';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { type DeliveryContext, RabbitMqDelivery } from './delivery.js';

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
 * never has more unacknowledged deliveries out than that. The deliveries' bookkeeping (slots, ack
 * deadlines, handler runs, drain) is the kit's `DeliveryTracker`. Re-attached on every reconnect.
 */
export class RabbitMqSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #config: RabbitMqSubscriptionConfig;
  readonly #tracker: DeliveryTracker<RabbitMqDelivery>;
  #channel: Channel | undefined;
  #consumerTag: string | undefined;
  #model: ChannelModel | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;

  constructor(config: RabbitMqSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#tracker = new DeliveryTracker({ maxInFlight: config.maxInFlight, ackTimeoutMs: config.ackTimeoutMs, handler: config.handler });
  }

  /** Opens a channel on `model` and starts consuming. */
  async attach(model: ChannelModel): Promise<void> {
    if (this.#stopping) return;
    this.#model = model;
    const channel = await model.createChannel();
    channel.on('error', () => {});
    channel.on('close', () => this.#onChannelClosed(channel));
    await channel.prefetch(this.#config.maxInFlight);
    const context: DeliveryContext = { channel, topic: this.topic, delay: this.#config.delay };
    const { consumerTag } = await channel.consume(this.#config.queue, (message) => {
      if (message === null) this.#onCancelled(channel);
      else this.#dispatch(context, message);
    });
    this.#channel = channel;
    this.#consumerTag = consumerTag;
  }

  #onChannelClosed(channel: Channel): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    // The server requeued every unacked delivery of that channel; settling them now would fail.
    for (const delivery of this.#tracker.deliveries()) if (delivery.context.channel === channel) void delivery.release();
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

  #dispatch(context: DeliveryContext, message: ConsumeMessage): void {
    if (this.#tracker.closing) {
      try {
        context.channel.nack(message, false, true);
      } catch {
        // Channel gone: requeued by the server.
      }
      return;
    }
    this.#tracker.dispatch(new RabbitMqDelivery(message, context));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    const channel = this.#channel;
    if (channel !== undefined && this.#consumerTag !== undefined) await channel.cancel(this.#consumerTag).catch(() => {});
    await this.#tracker.close(this.#config.drainTimeoutMs);
    this.#channel = undefined;
    if (channel !== undefined) await channel.close().catch(() => {});
    this.#config.onClosed(this);
  }
}
