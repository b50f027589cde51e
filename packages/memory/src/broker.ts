import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings } from '@switchboard/core';
import { BrokerLifecycle, brokerErrors, resolveSubscribeOptions } from '@switchboard/core/kit';
import { Group, type StoredMessage } from './group.js';
import { type MemoryBrokerOptions, type ResolvedMemoryBrokerOptions, resolveMemoryBrokerOptions } from './options.js';
import { MemorySubscription } from './subscription.js';

export type { MemoryBrokerOptions } from './options.js';

const RESOLVED: Promise<void> = Promise.resolve();
const errors = brokerErrors({ engine: 'memory' });

class MemoryBroker implements Broker {
  readonly name = 'memory';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #options: ResolvedMemoryBrokerOptions;
  readonly #topics = new Map<string, Map<string, Group>>();
  readonly #lifecycle = new BrokerLifecycle<MemorySubscription>(errors);

  constructor(options: MemoryBrokerOptions) {
    this.#options = resolveMemoryBrokerOptions(options);
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: false,
      multiProcess: false,
      ordering: 'per-key',
      delayedRedelivery: false,
      publishDeduplication: false,
      maxMessageBytes: this.#options.maxMessageBytes,
    };
  }

  publish(message: OutgoingMessage): Promise<void> {
    return this.publishBatch([message]);
  }

  publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    try {
      this.#lifecycle.checkPublish(messages, this.capabilities.maxMessageBytes);
      for (const message of messages) this.#accept(message);
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #accept(message: OutgoingMessage): void {
    const groups = this.#topics.get(message.topic);
    if (groups === undefined || groups.size === 0) return;
    const stored: StoredMessage = {
      id: message.id,
      topic: message.topic,
      headers: Object.freeze({ ...message.headers }),
      body: Buffer.from(message.body),
      key: message.key,
    };
    for (const group of groups.values()) group.enqueue({ message: stored, attempt: 0 });
  }

  #group(topic: string, group: string): Group {
    let groups = this.#topics.get(topic);
    if (groups === undefined) {
      groups = new Map();
      this.#topics.set(topic, groups);
    }
    let queue = groups.get(group);
    if (queue === undefined) {
      queue = new Group();
      groups.set(group, queue);
    }
    return queue;
  }

  /** Entries waiting for the group (not yet delivered, or back after a nack). */
  async pending(topic: string, group: string): Promise<number | undefined> {
    return this.#topics.get(topic)?.get(group)?.pending;
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#lifecycle.assertOpen('declareGroup');
    this.#group(topic, group);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#lifecycle.assertOpen('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
    const queue = this.#group(options.topic, options.group);
    const subscription = new MemorySubscription(
      {
        topic: options.topic,
        group: options.group,
        queue,
        maxInFlight,
        ackTimeoutMs,
        drainTimeoutMs: this.#options.drainTimeoutMs,
        onClosed: (closed) => this.#lifecycle.forget(closed),
      },
      handler,
    );
    queue.join(this.#lifecycle.add(subscription));
    return subscription;
  }

  close(): Promise<void> {
    return this.#lifecycle.close({
      after: async () => {
        for (const groups of this.#topics.values()) for (const group of groups.values()) group.close();
        this.#topics.clear();
      },
    });
  }
}

/**
 * The in-memory reference broker: one process, nothing persisted, fast. Every group keeps its
 * queue in memory; per-key ordering holds one message per key in flight at a time.
 */
export function createMemoryBroker(options: MemoryBrokerOptions = {}): Broker {
  return new MemoryBroker(options);
}
