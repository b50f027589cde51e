import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { DeliveryTracker } from '@switchboard/core/kit';
import type { ClaimedRow } from './broker-schema.js';
import { type SettleQueue, SqliteDelivery } from './delivery.js';

export interface SqliteSubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  /** The group's row id in the groups table. */
  readonly gid: number;
  readonly maxInFlight: number;
  /** The lease a claim takes, in whole milliseconds (SQLite stores integers). */
  readonly ackTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** Writes settles with its next transaction; `wake` makes it look for work now. */
  readonly broker: SettleQueue;
  readonly onClosed: (subscription: SqliteSubscription) => void;
}

/**
 * One consumer of a group: the broker's turn claims rows for it while its tracker has free slots.
 * While claims come back full (a backlog), the next one starts after the last row of the one
 * before (`cursor`) instead of walking again past the rows held in flight; a short claim, a nack
 * and an expired lease send it back to the head.
 */
export class SqliteSubscription implements Subscription, SettleQueue {
  readonly topic: string;
  readonly group: string;
  readonly gid: number;
  readonly ackTimeoutMs: number;
  readonly #config: SqliteSubscriptionConfig;
  readonly #tracker: DeliveryTracker<SqliteDelivery>;
  #cursor = 0;
  #closing: Promise<void> | undefined;

  constructor(config: SqliteSubscriptionConfig, handler: DeliveryHandler) {
    this.topic = config.topic;
    this.group = config.group;
    this.gid = config.gid;
    this.ackTimeoutMs = config.ackTimeoutMs;
    this.#config = config;
    this.#tracker = new DeliveryTracker({ maxInFlight: config.maxInFlight, ackTimeoutMs: config.ackTimeoutMs, handler });
  }

  /** Slots free for new deliveries (0 once closing). */
  get free(): number {
    return this.#tracker.free;
  }

  /** Where the next claim starts (`seq` after which rows are taken; 0: the head). */
  get cursor(): number {
    return this.#cursor;
  }

  /** Hands the rows of a claim (in `seq` order) to the handler; `full` when the claim took all it asked for. */
  claimed(rows: ClaimedRow[], full: boolean): void {
    this.#cursor = full && rows.length > 0 ? rows[rows.length - 1]!.seq : 0;
    for (const row of rows) this.#tracker.dispatch(new SqliteDelivery(row, this.topic, this));
  }

  /** Something is behind the cursor: the next claim starts from the head. */
  rescan(): void {
    this.#cursor = 0;
  }

  settle(seq: number, attempt: number, visibleAt: number | undefined): Promise<void> {
    if (visibleAt !== undefined) this.#cursor = 0;
    return this.#config.broker.settle(seq, attempt, visibleAt);
  }

  wake(): void {
    this.#cursor = 0;
    this.#config.broker.wake();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Released deliveries are written with the broker's next turn; if that fails, their leases run out.
    await this.#tracker.close(this.#config.drainTimeoutMs);
    this.#config.onClosed(this);
  }
}
