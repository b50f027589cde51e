import { setMaxListeners } from 'node:events';
import type { Broker, CloudEvent, CloudEventsBinding, Delivery, Subscription } from '@switchboard/core';
import { backoffDelay, channels, encodeBinary } from '@switchboard/core';
import { InboundMessage, type InboundVia, type Outcome, type Step } from './pipeline.js';
import type { RouteTable } from './routes.js';

export interface ConsumerConfig {
  readonly broker: Broker;
  readonly group: string;
  readonly binding: CloudEventsBinding;
  readonly routes: RouteTable;
  readonly pipeline: Step;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One consumer group's subscriptions. Every delivery runs through the pipeline and is settled by
 * its outcome: `ack`, `nack(delay)` for a retry, `ack` after a dead letter was stored. A pipeline
 * that itself fails (a store down) nacks with backoff: the message is never lost.
 */
export class Consumer {
  readonly #config: ConsumerConfig;
  readonly #subscriptions: Subscription[] = [];
  readonly #closing = new AbortController();
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(config: ConsumerConfig) {
    this.#config = config;
    // Every running handler listens to it (through its own timeout signal).
    setMaxListeners(0, this.#closing.signal);
  }

  get started(): boolean {
    return this.#started !== undefined;
  }

  /** Subscribes to every topic the registered handlers need (declaring the group first). */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const { broker, group, routes, maxInFlight, ackTimeoutMs } = this.#config;
    routes.freeze();
    const topics = routes.topics();
    await Promise.all(topics.map((topic) => broker.declareGroup(topic, group)));
    for (const topic of topics) {
      this.#subscriptions.push(await broker.subscribe({ topic, group, maxInFlight, ackTimeoutMs }, this.#onDelivery));
    }
  }

  readonly #onDelivery = async (delivery: Delivery): Promise<void> => {
    const outcome = await this.#run(delivery, 'broker');
    switch (outcome.kind) {
      case 'ack':
      case 'dead-letter':
        return delivery.ack();
      case 'retry':
        return delivery.nack(outcome.delayMs);
    }
  };

  async #run(delivery: Delivery, via: InboundVia): Promise<Outcome> {
    const message = new InboundMessage(delivery, this.#config.group, via, this.#closing.signal);
    if (channels.deliver.hasSubscribers) {
      channels.deliver.publish({ messageId: delivery.id, topic: delivery.topic, attempt: delivery.attempt, group: message.group });
    }
    let outcome: Outcome;
    try {
      outcome = await this.#config.pipeline(message);
    } catch (error) {
      // The pipeline's own machinery failed (a store unreachable): try again later.
      outcome = { kind: 'retry', delayMs: backoffDelay(delivery.attempt), counted: false };
      if (channels.settle.hasSubscribers) {
        channels.settle.publish({ messageId: delivery.id, topic: delivery.topic, type: message.event?.type, outcome: 'retry', error });
      }
      return outcome;
    }
    if (channels.settle.hasSubscribers) {
      channels.settle.publish({ messageId: delivery.id, topic: delivery.topic, type: message.event?.type, outcome: outcome.kind });
    }
    return outcome;
  }

  /**
   * Runs an event received outside the broker (the CloudEvents HTTP endpoint) through the same
   * pipeline. It is re-encoded in the broker's binding, so a dead letter can be replayed through the broker.
   */
  receive(event: CloudEvent): Promise<Outcome> {
    const { binding, routes, group } = this.#config;
    const encoded = encodeBinary(event, binding);
    const topic = routes.topicOf(event.type) ?? `${group}.unrouted`;
    const delivery: Delivery = {
      id: event.id,
      topic,
      headers: encoded.headers,
      body: encoded.body,
      attempt: 1,
      ack: () => RESOLVED,
      nack: () => RESOLVED,
    };
    return this.#run(delivery, 'http');
  }

  /** Stops taking deliveries; in-flight ones finish (or are released by the broker after its drain timeout). */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.close()));
    this.#closing.abort();
  }
}
