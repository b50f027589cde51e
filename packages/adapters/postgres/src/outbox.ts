import type { Headers, OutboxClaimOptions, OutboxEntry, OutboxMessage, OutboxStore } from '@switchboard/core';
import { assertOutboxMessage } from '@switchboard/core/kit';
import type pg from 'pg';
import { PostgresStoreConnection, type PostgresStoreOptions, type Queryable } from './store-connection.js';

export interface PostgresOutboxOptions extends PostgresStoreOptions {
  /** Table name (lower-case letters, digits, `_`); also the NOTIFY channel. Default `switchboard_outbox`. */
  readonly table?: string;
  /** Delay before LISTEN is tried again after its connection was lost. Default 1 000 ms. */
  readonly relistenDelayMs?: number;
}

interface OutboxRow {
  seq: string;
  id: string;
  topic: string;
  headers: string;
  body: Buffer;
  msg_key: string | null;
  receiver_group: string | null;
  created_at: string;
  attempts: number;
  lease_owner: string | null;
  lease_until: string | null;
}

const PURGE_CHUNK = 1000;

function schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL,
  topic TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BYTEA NOT NULL,
  msg_key TEXT,
  receiver_group TEXT,
  created_at BIGINT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_until BIGINT,
  sent_at BIGINT
);
CREATE INDEX IF NOT EXISTS ${t}_unsent ON ${t} (seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS ${t}_sent ON ${t} (sent_at) WHERE sent_at IS NOT NULL;`;
}

/**
 * The transactional outbox on PostgreSQL. `enqueue(client, messages)` runs on the application's
 * own transaction client, so the messages commit or roll back with the application's rows:
 *
 * ```ts
 * const client = await pool.connect();
 * await client.query('BEGIN');
 * await client.query('INSERT INTO orders …', […]);
 * await outbox.enqueue(client, [{ id: newMessageId(), topic: 'orders', headers, body }]);
 * await client.query('COMMIT');
 * ```
 *
 * The insert also `NOTIFY`s the channel named after the table; PostgreSQL delivers it only at
 * commit, so a relay woken by it finds the committed rows. The relay side claims under a
 * transaction-scoped advisory lock (claims are short; `enqueue` never waits for it), so relays on
 * any hosts never claim the same entry while its lease holds.
 *
 * Schema (`<table>`, created on first use under an advisory lock, or by `ready()`): `seq` BIGSERIAL
 * (insertion order), the message (`id`, `topic`, `headers` JSON text, `body` BYTEA, `msg_key`, `receiver_group`),
 * `created_at`, `attempts`, `lease_owner`, `lease_until`, `sent_at`; a partial index over unsent
 * entries and one over sent entries for `purgeSent`.
 */
export class PostgresOutbox implements OutboxStore {
  readonly #db: PostgresStoreConnection;
  readonly #clock: () => number;
  readonly #t: string;
  readonly #relistenDelayMs: number;
  readonly #listeners = new Set<() => void>();
  #listener: pg.PoolClient | undefined;
  #listening: Promise<void> | undefined;
  #relisten: NodeJS.Timeout | undefined;
  /** Bumped on every stop, so a LISTEN that completes after it drops its connection. */
  #generation = 0;

  constructor(options: PostgresOutboxOptions) {
    this.#db = new PostgresStoreConnection('outbox', options, options.table ?? 'switchboard_outbox', schema);
    this.#clock = options.clock ?? Date.now;
    this.#t = this.#db.table;
    this.#relistenDelayMs = options.relistenDelayMs ?? 1000;
  }

  /** Creates the table if needed. Call it at startup so the first `enqueue` does not have to. */
  async ready(): Promise<void> {
    this.#db.assertOpen();
    await this.#db.ensureSchema();
  }

  /**
   * Inserts messages (in order, one statement) on `client` — the application's transaction client —
   * and notifies relays at commit. Every message is checked first (`SB_BAD_REQUEST`); nothing is
   * inserted when one is invalid. A failing insert rejects with `SB_STORE_UNAVAILABLE` and, as any
   * failed statement does, aborts the application's transaction. Returns the `seq`s.
   */
  async enqueue(client: Queryable, messages: readonly OutboxMessage[]): Promise<number[]> {
    this.#db.assertOpen();
    for (const message of messages) assertOutboxMessage(message);
    if (messages.length === 0) return [];
    await this.#db.ensureSchema();
    try {
      const { rows } = await client.query<{ seqs: string[] }>(
        `WITH ins AS (
           INSERT INTO ${this.#t} (id, topic, headers, body, msg_key, receiver_group, created_at)
           SELECT id, topic, headers, body, msg_key, receiver_group, $6
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $8::text[])
             WITH ORDINALITY AS u(id, topic, headers, body, msg_key, receiver_group, n) ORDER BY n
           RETURNING seq)
         SELECT array_agg(seq ORDER BY seq)::text[] AS seqs, pg_notify($7, '') FROM ins`,
        [
          messages.map((m) => m.id),
          messages.map((m) => m.topic),
          messages.map((m) => JSON.stringify(m.headers)),
          messages.map((m) => Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)),
          messages.map((m) => m.key ?? null),
          this.#clock(),
          this.#t,
          messages.map((m) => m.receiverGroup ?? null),
        ],
      );
      return (rows[0]?.seqs ?? []).map(Number);
    } catch (error) {
      throw this.#db.failure(error);
    }
  }

  async claim(options: OutboxClaimOptions): Promise<OutboxEntry[]> {
    const t = this.#t;
    return this.#db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`switchboard:outbox:${t}`]);
      const now = this.#clock();
      const { rows } = await client.query<{ seq: string; lease_owner: string | null; lease_until: string | null }>(
        `SELECT seq, lease_owner, lease_until FROM ${t} WHERE sent_at IS NULL ORDER BY seq LIMIT $1`,
        [Math.max(1, Math.trunc(options.limit))],
      );
      const seqs: string[] = [];
      for (const row of rows) {
        // A prefix only: never skip past an entry another live relay is publishing.
        if (row.lease_owner !== null && row.lease_owner !== options.owner && Number(row.lease_until) > now) break;
        seqs.push(row.seq);
      }
      if (seqs.length === 0) return [];
      const claimed = await client.query<OutboxRow>(
        `UPDATE ${t} SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 WHERE seq = ANY($3::bigint[])
         RETURNING seq, id, topic, headers, body, msg_key, receiver_group, created_at, attempts, lease_owner, lease_until`,
        [options.owner, now + options.leaseMs, seqs],
      );
      return claimed.rows.map(toEntry).sort((a, b) => a.seq - b.seq);
    });
  }

  async markSent(seqs: readonly number[], owner: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      `UPDATE ${this.#t} SET sent_at = $1, lease_owner = NULL, lease_until = NULL
       WHERE seq = ANY($2::bigint[]) AND lease_owner = $3 AND sent_at IS NULL`,
      [this.#clock(), seqs, owner],
    );
    return rowCount ?? 0;
  }

  async release(seqs: readonly number[], owner: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      `UPDATE ${this.#t} SET lease_owner = NULL, lease_until = NULL WHERE seq = ANY($1::bigint[]) AND lease_owner = $2 AND sent_at IS NULL`,
      [seqs, owner],
    );
    return rowCount ?? 0;
  }

  async purgeSent(olderThan: number): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.#db.query(
        `DELETE FROM ${this.#t} WHERE seq IN (SELECT seq FROM ${this.#t} WHERE sent_at < $1 LIMIT ${PURGE_CHUNK})`,
        [olderThan],
      );
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < PURGE_CHUNK) return total;
    }
  }

  async pendingCount(): Promise<number> {
    const { rows } = await this.#db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.#t} WHERE sent_at IS NULL`);
    return rows[0]?.n ?? 0;
  }

  /**
   * Calls `listener` on every commit that enqueued messages (LISTEN on one pooled connection, held
   * while someone listens), and once each time LISTEN starts — commits made before it could not be
   * heard. A lost connection is listened again after `relistenDelayMs`; relays poll meanwhile.
   */
  onEnqueued(listener: () => void): () => void {
    this.#listeners.add(listener);
    this.#startListening();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopListening();
    };
  }

  async close(): Promise<void> {
    if (this.#db.closed) return;
    this.#listeners.clear();
    const listening = this.#listening;
    this.#stopListening();
    // A LISTEN still connecting drops its connection when it sees the stop; wait for it before the pool ends.
    await listening;
    await this.#db.close();
  }

  #wake(): void {
    for (const listener of this.#listeners) listener();
  }

  #startListening(): void {
    if (this.#listening !== undefined || this.#db.closed) return;
    const generation = this.#generation;
    this.#listening = (async () => {
      await this.#db.ensureSchema();
      const client = await this.#db.pool.connect();
      client.on('notification', (message) => {
        if (message.channel === this.#t) this.#wake();
      });
      client.on('error', () => this.#lost(client));
      try {
        await client.query(`LISTEN ${this.#t}`);
      } catch (error) {
        client.release(true);
        throw error;
      }
      if (generation !== this.#generation || this.#db.closed) {
        client.release(true);
        return;
      }
      this.#listener = client;
      this.#wake();
    })().catch(() => {
      if (generation !== this.#generation) return;
      this.#listening = undefined;
      this.#scheduleRelisten();
    });
  }

  #lost(client: pg.PoolClient): void {
    if (this.#listener !== client) return;
    this.#listener = undefined;
    this.#listening = undefined;
    client.release(true);
    this.#scheduleRelisten();
  }

  #scheduleRelisten(): void {
    if (this.#relisten !== undefined || this.#listeners.size === 0 || this.#db.closed) return;
    this.#relisten = setTimeout(() => {
      this.#relisten = undefined;
      if (this.#listeners.size > 0) this.#startListening();
    }, this.#relistenDelayMs);
    this.#relisten.unref();
  }

  #stopListening(): void {
    this.#generation++;
    clearTimeout(this.#relisten);
    this.#relisten = undefined;
    const client = this.#listener;
    this.#listener = undefined;
    this.#listening = undefined;
    // The connection is dropped rather than returned, so no LISTEN lingers on a pooled connection.
    client?.release(true);
  }
}

function toEntry(row: OutboxRow): OutboxEntry {
  const message: OutboxMessage = {
    id: row.id,
    topic: row.topic,
    headers: JSON.parse(row.headers) as Headers,
    body: new Uint8Array(row.body),
    ...(row.msg_key === null ? {} : { key: row.msg_key }),
    ...(row.receiver_group === null ? {} : { receiverGroup: row.receiver_group }),
  };
  return { seq: Number(row.seq), message, attempts: row.attempts, createdAt: Number(row.created_at) };
}

export function createPostgresOutbox(options: PostgresOutboxOptions): PostgresOutbox {
  return new PostgresOutbox(options);
}
