import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { DeliveryTracker } from '@switchboard/core/kit';
import { MemoryDelivery } from './delivery.js';
import type { Entry, Group, GroupMember } from './group.js';

export interface MemorySubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  readonly queue: Group;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly onClosed: (subscription: MemorySubscription) => void;
}

/** One member of a group: the group hands it entries while its tracker has free slots. */
export class MemorySubscription implements Subscription, GroupMember {
  readonly topic: string;
  readonly group: string;
  readonly #config: MemorySubscriptionConfig;
  readonly #tracker: DeliveryTracker<MemoryDelivery>;
  #closing: Promise<void> | undefined;

  constructor(config: MemorySubscriptionConfig, handler: DeliveryHandler) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#tracker = new DeliveryTracker({ maxInFlight: config.maxInFlight, ackTimeoutMs: config.ackTimeoutMs, handler });
  }

  hasCapacity(): boolean {
    return this.#tracker.free > 0;
  }

  deliver(entry: Entry): void {
    entry.attempt += 1;
    this.#tracker.dispatch(new MemoryDelivery(entry, this.#config.queue));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#config.queue.leave(this);
    this.#config.onClosed(this);
    await this.#tracker.close(this.#config.drainTimeoutMs);
  }
}
