import { plainHeadersFromJson, TrackedDelivery } from '@switchboard/core/kit';
import type { ClaimedRow } from './broker-schema.js';

/** Where a delivery's settles go: written with the broker's next transaction. */
export interface SettleQueue {
  /** `visibleAt` undefined for an ack; for a nack or release, when the row is ready again. Resolves once committed. */
  settle(seq: number, attempt: number, visibleAt: number | undefined): Promise<void>;
  /** A slot was freed without a settle (the lease ran out): look for work. */
  wake(): void;
}

/** `(seq, attempt)` names one delivery of a row: a settle of an older attempt matches nothing. */
export class SqliteDelivery extends TrackedDelivery {
  readonly seq: number;
  readonly #queue: SettleQueue;

  constructor(row: ClaimedRow, topic: string, queue: SettleQueue) {
    super({
      id: row.id === '' ? String(row.seq) : row.id,
      topic,
      headers: plainHeadersFromJson(row.headers),
      // A producer may have written text into the BLOB column (SQLite keeps the value's own type).
      body: typeof row.body === 'string' ? Buffer.from(row.body, 'utf8') : row.body,
      key: row.key ?? undefined,
      attempt: row.attempt,
    });
    this.seq = row.seq;
    this.#queue = queue;
  }

  protected settleAck(): Promise<void> {
    return this.#queue.settle(this.seq, this.attempt, undefined);
  }

  protected settleNack(delayMs: number): Promise<void> {
    return this.#queue.settle(this.seq, this.attempt, Date.now() + delayMs);
  }

  /** The lease in the database ran out with the deadline: the row is ready for anyone again. */
  protected override onExpired(): void {
    this.#queue.wake();
  }
}
