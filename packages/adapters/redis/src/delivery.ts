import { TrackedDelivery } from '@switchboard/core/kit';
import type { DecodedEntry } from './layout.js';

/** How a delivery's entry is settled in its consumer group. */
export interface EntrySettler {
  /** XACK (batched per tick). */
  ack(entryId: string): Promise<void>;
  /** The entry stays pending and is parked in the group's delayed set until it is due. */
  nack(entryId: string, delayMs: number): Promise<void>;
}

/**
 * One delivery of a stream entry. Nothing to do when its ack deadline passes: the entry stays in
 * the group's pending-entries list, and XAUTOCLAIM hands it out again.
 */
export class StreamDelivery extends TrackedDelivery {
  readonly entryId: string;
  readonly #settler: EntrySettler;

  constructor(topic: string, entryId: string, entry: DecodedEntry, attempt: number, settler: EntrySettler) {
    super({ id: entry.id, topic, headers: entry.headers, body: entry.body, key: entry.key, attempt });
    this.entryId = entryId;
    this.#settler = settler;
  }

  protected settleAck(): Promise<void> {
    return this.#settler.ack(this.entryId);
  }

  protected settleNack(delayMs: number): Promise<void> {
    return this.#settler.nack(this.entryId, delayMs);
  }
}
