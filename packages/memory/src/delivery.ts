import { TrackedDelivery } from '@switchboard/core/kit';
import type { Entry, Group } from './group.js';

const RESOLVED: Promise<void> = Promise.resolve();

/** One delivery of a group's entry: settling it tells the group, which hands out the next one. */
export class MemoryDelivery extends TrackedDelivery {
  readonly entry: Entry;
  readonly #group: Group;

  constructor(entry: Entry, group: Group) {
    const message = entry.message;
    super({ id: message.id, topic: message.topic, headers: message.headers, body: message.body, key: message.key, attempt: entry.attempt });
    this.entry = entry;
    this.#group = group;
  }

  protected settleAck(): Promise<void> {
    this.#group.finished(this.entry);
    return RESOLVED;
  }

  protected settleNack(delayMs: number): Promise<void> {
    this.#group.requeue(this.entry, delayMs);
    return RESOLVED;
  }

  /** Nothing else redelivers in memory: an expired delivery goes back to the front of its group at once. */
  protected override onExpired(): void {
    this.#group.requeue(this.entry, 0);
  }
}
