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
  readonly queue: SettleQueue;
  readonly onClosed: (subscription: SqliteSubscription) => void;
}

/** One consumer of a group: the broker's turn claims rows for it while its tracker has free slots. */
export class SqliteSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly gid: number;
  readonly ackTimeoutMs: number;
  readonly #config: SqliteSubscriptionConfig;
  readonly #tracker: DeliveryTracker<SqliteDelivery>;
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

  /** Hands claimed rows to the handler, in `seq` order. */
  dispatch(rows: ClaimedRow[]): void {
    if (rows.length > 1) rows.sort((a, b) => a.seq - b.seq);
    for (const row of rows) this.#tracker.dispatch(new SqliteDelivery(row, this.topic, this.#config.queue));
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
