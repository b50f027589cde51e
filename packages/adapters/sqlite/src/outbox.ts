import {
  type Headers,
  type OutboxClaimOptions,
  type OutboxEntry,
  type OutboxMessage,
  type OutboxStore,
  SwitchboardError,
} from '@switchboard/core';
import { assertOutboxMessage } from '@switchboard/core/kit';
import type BetterSqlite3 from 'better-sqlite3';
import { openStoreDatabase, runStoreCall, type StoreDatabaseOptions, tableName } from './store-database.js';

export interface SqliteOutboxOptions extends StoreDatabaseOptions {
  /** Clock in epoch ms (leases, `createdAt`, `sentAt`). Default `Date.now`. */
  readonly clock?: () => number;
}

interface OutboxRow {
  seq: number;
  id: string;
  topic: string;
  headers: string;
  body: Buffer;
  msg_key: string | null;
  receiver_group: string | null;
  created_at: number;
  attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
}

const PURGE_CHUNK = 1000;

/**
 * The transactional outbox on SQLite. Open it on the application's own database handle
 * (`database: db`) and call `enqueue` inside the application's transaction:
 *
 * ```ts
 * db.transaction(() => {
 *   insertOrder.run(order);
 *   outbox.enqueue([{ id: newMessageId(), topic: 'orders', headers, body }]);
 * })();
 * ```
 *
 * The relay side (`OutboxStore`) claims in one `BEGIN IMMEDIATE` transaction, so several relays —
 * in this process or others sharing the file — never claim the same entry while its lease holds.
 *
 * Schema (`<prefix>outbox`): `seq` INTEGER PRIMARY KEY AUTOINCREMENT (insertion order, never
 * reused), the message (`id`, `topic`, `headers` JSON, `body` BLOB, `msg_key`, `receiver_group`), `created_at`,
 * `attempts`, `lease_owner`, `lease_until`, `sent_at`; a partial index over unsent entries.
 */
export class SqliteOutbox implements OutboxStore {
  readonly #db: BetterSqlite3.Database;
  readonly #ownsDatabase: boolean;
  readonly #clock: () => number;
  readonly #table: string;
  readonly #listeners = new Set<() => void>();
  readonly #insert: BetterSqlite3.Statement<[string, string, string, Buffer, string | null, string | null, number]>;
  readonly #enqueueTx: BetterSqlite3.Transaction<(messages: readonly OutboxMessage[]) => number[]>;
  readonly #claimTx: BetterSqlite3.Transaction<(options: OutboxClaimOptions) => OutboxEntry[]>;
  readonly #markSentTx: BetterSqlite3.Transaction<(seqs: readonly number[], owner: string) => number>;
  readonly #releaseTx: BetterSqlite3.Transaction<(seqs: readonly number[], owner: string) => number>;
  readonly #purge: BetterSqlite3.Statement<[number]>;
  readonly #pending: BetterSqlite3.Statement<[], { n: number }>;
  #notifyScheduled = false;
  #closed = false;

  constructor(options: SqliteOutboxOptions) {
    const { db, owns } = openStoreDatabase(options);
    this.#db = db;
    this.#ownsDatabase = owns;
    this.#clock = options.clock ?? Date.now;
    this.#table = tableName(options.tablePrefix, 'outbox');
    const t = this.#table;
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${t} (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        topic TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        msg_key TEXT,
        receiver_group TEXT,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until INTEGER,
        sent_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS ${t}_unsent ON ${t} (seq) WHERE sent_at IS NULL;
      CREATE INDEX IF NOT EXISTS ${t}_sent ON ${t} (sent_at) WHERE sent_at IS NOT NULL;
    `);
    this.#insert = db.prepare(
      `INSERT INTO ${t} (id, topic, headers, body, msg_key, receiver_group, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const selectHead = db.prepare<[number], OutboxRow>(
      `SELECT seq, id, topic, headers, body, msg_key, receiver_group, created_at, attempts, lease_owner, lease_until FROM ${t}
       WHERE sent_at IS NULL ORDER BY seq LIMIT ?`,
    );
    const lease = db.prepare<[string, number, number]>(
      `UPDATE ${t} SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE seq = ?`,
    );
    const markSent = db.prepare<[number, number, string]>(
      `UPDATE ${t} SET sent_at = ?, lease_owner = NULL, lease_until = NULL WHERE seq = ? AND lease_owner = ? AND sent_at IS NULL`,
    );
    const release = db.prepare<[number, string]>(
      `UPDATE ${t} SET lease_owner = NULL, lease_until = NULL WHERE seq = ? AND lease_owner = ? AND sent_at IS NULL`,
    );
    this.#purge = db.prepare(`DELETE FROM ${t} WHERE seq IN (SELECT seq FROM ${t} WHERE sent_at < ? LIMIT ${PURGE_CHUNK})`);
    this.#pending = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM ${t} WHERE sent_at IS NULL`);

    this.#enqueueTx = db.transaction((messages: readonly OutboxMessage[]) => {
      const now = this.#clock();
      return messages.map((message) => {
        const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
        const headers = JSON.stringify(message.headers);
        const info = this.#insert.run(message.id, message.topic, headers, body, message.key ?? null, message.receiverGroup ?? null, now);
        return Number(info.lastInsertRowid);
      });
    });
    this.#claimTx = db.transaction((claim: OutboxClaimOptions) => {
      const now = this.#clock();
      const until = now + claim.leaseMs;
      const entries: OutboxEntry[] = [];
      for (const row of selectHead.all(Math.max(1, Math.trunc(claim.limit)))) {
        // A prefix only: never skip past an entry another live relay is publishing.
        if (row.lease_owner !== null && row.lease_owner !== claim.owner && (row.lease_until ?? 0) > now) break;
        lease.run(claim.owner, until, row.seq);
        entries.push(toEntry(row));
      }
      return entries;
    });
    this.#markSentTx = db.transaction((seqs: readonly number[], owner: string) => {
      const now = this.#clock();
      let count = 0;
      for (const seq of new Set(seqs)) count += markSent.run(now, seq, owner).changes;
      return count;
    });
    this.#releaseTx = db.transaction((seqs: readonly number[], owner: string) => {
      let count = 0;
      for (const seq of new Set(seqs)) count += release.run(seq, owner).changes;
      return count;
    });
  }

  /**
   * Stores messages in the outbox, synchronously. Inside the application's transaction on the same
   * database handle it joins that transaction (as a savepoint), so the messages exist exactly when
   * the application's writes commit. Outside a transaction it commits them at once. Every message
   * is checked first (`SB_BAD_REQUEST`); nothing is stored when one is invalid. Returns the `seq`s.
   */
  enqueue(messages: readonly OutboxMessage[]): number[] {
    this.#open();
    for (const message of messages) assertOutboxMessage(message);
    if (messages.length === 0) return [];
    const seqs = runStoreCall('outbox', () => this.#enqueueTx.immediate(messages));
    this.#scheduleNotify();
    return seqs;
  }

  async claim(options: OutboxClaimOptions): Promise<OutboxEntry[]> {
    this.#open();
    return runStoreCall('outbox', () => this.#claimTx.immediate(options));
  }

  async markSent(seqs: readonly number[], owner: string): Promise<number> {
    this.#open();
    return runStoreCall('outbox', () => this.#markSentTx.immediate(seqs, owner));
  }

  async release(seqs: readonly number[], owner: string): Promise<number> {
    this.#open();
    return runStoreCall('outbox', () => this.#releaseTx.immediate(seqs, owner));
  }

  async purgeSent(olderThan: number): Promise<number> {
    this.#open();
    let total = 0;
    // Chunks of 1000, one short transaction each, so writers are not locked out for long.
    for (;;) {
      const { changes } = runStoreCall('outbox', () => this.#purge.run(olderThan));
      total += changes;
      if (changes < PURGE_CHUNK) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async pendingCount(): Promise<number> {
    this.#open();
    return runStoreCall('outbox', () => this.#pending.get()?.n ?? 0);
  }

  /**
   * Wakes in-process relays after an `enqueue` (on the next turn of the event loop, by which time
   * the application's synchronous transaction has committed). Relays in other processes poll.
   */
  onEnqueued(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }

  #scheduleNotify(): void {
    if (this.#notifyScheduled || this.#listeners.size === 0) return;
    this.#notifyScheduled = true;
    setImmediate(() => {
      this.#notifyScheduled = false;
      for (const listener of this.#listeners) listener();
    });
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'outbox closed' });
  }
}

function toEntry(row: OutboxRow): OutboxEntry {
  const headers = JSON.parse(row.headers) as Headers;
  const message: OutboxMessage = {
    id: row.id,
    topic: row.topic,
    headers,
    body: new Uint8Array(row.body),
    ...(row.msg_key === null ? {} : { key: row.msg_key }),
    ...(row.receiver_group === null ? {} : { receiverGroup: row.receiver_group }),
  };
  return { seq: row.seq, message, attempts: row.attempts + 1, createdAt: row.created_at };
}

export function createSqliteOutbox(options: SqliteOutboxOptions): SqliteOutbox {
  return new SqliteOutbox(options);
}
