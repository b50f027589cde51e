import { createHash } from 'node:crypto';
import type {
  IdempotencyBegin,
  IdempotencyBeginResult,
  IdempotencyBounds,
  IdempotencyLock,
  IdempotencyStore,
  StoredResponse,
} from '@switchboard/core';
import { IDEMPOTENCY_FULL_RETRY_AFTER_MS, idempotencyRecordBytes, newSecretId, resolveIdempotencyBounds } from '@switchboard/core/kit';
import { lockKeys, PostgresStoreConnection, type PostgresStoreOptions, type Queryable } from './store-connection.js';

export interface PostgresIdempotencyStoreOptions extends PostgresStoreOptions, IdempotencyBounds {
  /** Table name (lower-case letters, digits, `_`); `<table>_totals` holds the counters. Default `switchboard_idempotency`. */
  readonly table?: string;
}

interface Row {
  request_hash: string;
  token: string;
  done: boolean;
  status: number | null;
  headers: string | null;
  body: string | null;
  bytes: string;
  expires_at: string;
}

/** Counter rows: concurrent transactions of different keys update different rows, not one hot row. */
const SHARDS = 16;
const EVICT_BATCH = 64;

function schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  scope TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  request_hash TEXT NOT NULL,
  token TEXT NOT NULL,
  done BOOLEAN NOT NULL DEFAULT false,
  status INTEGER,
  headers TEXT,
  body TEXT,
  bytes BIGINT NOT NULL,
  shard SMALLINT NOT NULL,
  expires_at BIGINT NOT NULL,
  completed_at BIGINT,
  seq BIGSERIAL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS ${t}_expires ON ${t} (expires_at);
CREATE INDEX IF NOT EXISTS ${t}_completed ON ${t} (seq) WHERE done;
CREATE TABLE IF NOT EXISTS ${t}_totals (shard SMALLINT PRIMARY KEY, entries BIGINT NOT NULL, bytes BIGINT NOT NULL);
INSERT INTO ${t}_totals (shard, entries, bytes) SELECT s, 0, 0 FROM generate_series(0, ${SHARDS - 1}) AS s ON CONFLICT DO NOTHING;`;
}

function shardOf(scope: string, key: string): number {
  return (createHash('sha1').update(scope).update('\u0000').update(key).digest()[0] as number) % SHARDS;
}

/**
 * `IdempotencyStore` on PostgreSQL: keys survive restarts and are shared by every instance. Each
 * call is one transaction that first takes an advisory lock on its (scope, key), so concurrent
 * begins of one key serialise and exactly one starts.
 *
 * The bounds are kept with counters in `<table>_totals`, sharded in 16 rows by key so that
 * transactions of different keys do not queue on one row, and read as their sum: under concurrency
 * the totals may overshoot the bounds by the records of transactions that ran at the same moment.
 * Eviction deletes expired records, then the oldest completed ones (by `seq`, numbered at completion) (`FOR UPDATE SKIP LOCKED`), never
 * a record in progress.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  readonly #db: PostgresStoreConnection;
  readonly #clock: () => number;
  readonly #t: string;
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(options: PostgresIdempotencyStoreOptions) {
    const bounds = resolveIdempotencyBounds(options);
    this.#maxEntries = bounds.maxEntries;
    this.#maxBytes = bounds.maxBytes;
    this.#db = new PostgresStoreConnection('idempotency', options, options.table ?? 'switchboard_idempotency', schema);
    this.#clock = options.clock ?? Date.now;
    this.#t = this.#db.table;
  }

  begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult> {
    return this.#db.transaction(async (client) => {
      await lockKeys(client, this.#t, [`${request.scope}\u0000${request.key}`]);
      const now = this.#clock();
      const row = await this.#select(client, request.scope, request.key);
      if (row !== undefined && Number(row.expires_at) > now) {
        if (row.request_hash !== request.requestHash) return { status: 'mismatch' };
        if (!row.done) return { status: 'in-progress' };
        return { status: 'replay', response: responseOf(row) };
      }
      if (row !== undefined) await this.#remove(client, request.scope, request.key);
      const bytes = idempotencyRecordBytes(request.scope, request.key, request.requestHash);
      if (!(await this.#makeRoom(client, bytes, now))) return { status: 'full', retryAfterMs: IDEMPOTENCY_FULL_RETRY_AFTER_MS };
      const token = newSecretId();
      const shard = shardOf(request.scope, request.key);
      await client.query(
        `WITH added AS (INSERT INTO ${this.#t} (scope, key, request_hash, token, bytes, shard, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7))
         UPDATE ${this.#t}_totals SET entries = entries + 1, bytes = bytes + $5 WHERE shard = $6`,
        [request.scope, request.key, request.requestHash, token, bytes, shard, now + request.lockMs],
      );
      return { status: 'started', token };
    });
  }

  complete(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): Promise<void> {
    return this.#db.transaction(async (client) => {
      await lockKeys(client, this.#t, [`${lock.scope}\u0000${lock.key}`]);
      const row = await this.#select(client, lock.scope, lock.key);
      if (row === undefined || row.done || row.token !== lock.token) return;
      const bytes = idempotencyRecordBytes(lock.scope, lock.key, row.request_hash, response);
      await this.#remove(client, lock.scope, lock.key);
      const now = this.#clock();
      if (bytes > this.#maxBytes || !(await this.#makeRoom(client, bytes, now))) return;
      const shard = shardOf(lock.scope, lock.key);
      await client.query(
        `WITH added AS (
           INSERT INTO ${this.#t} (scope, key, request_hash, token, done, status, headers, body, bytes, shard, expires_at, completed_at)
           VALUES ($1, $2, $3, $4, true, $5, $6, $7, $8, $9, $10, $11))
         UPDATE ${this.#t}_totals SET entries = entries + 1, bytes = bytes + $8 WHERE shard = $9`,
        [
          lock.scope,
          lock.key,
          row.request_hash,
          lock.token,
          response.status,
          JSON.stringify(response.headers),
          response.body,
          bytes,
          shard,
          now + ttlMs,
          now,
        ],
      );
    });
  }

  async abandon(lock: IdempotencyLock): Promise<void> {
    await this.#db.query(
      `WITH gone AS (DELETE FROM ${this.#t} WHERE scope = $1 AND key = $2 AND token = $3 AND NOT done RETURNING shard, bytes)
       UPDATE ${this.#t}_totals t SET entries = t.entries - 1, bytes = t.bytes - gone.bytes FROM gone WHERE t.shard = gone.shard`,
      [lock.scope, lock.key, lock.token],
    );
  }

  /** Deletes expired records; answers how many. Expired records also go whenever room is needed. */
  async purge(): Promise<number> {
    return this.#db.transaction(async (client) => {
      let total = 0;
      for (;;) {
        const removed = await this.#evict(client, `expires_at <= ${Number(this.#clock())}`, 'expires_at', EVICT_BATCH);
        total += removed;
        if (removed < EVICT_BATCH) return total;
      }
    });
  }

  close(): Promise<void> {
    return this.#db.close();
  }

  async #select(client: Queryable, scope: string, key: string): Promise<Row | undefined> {
    const { rows } = await client.query<Row>(
      `SELECT request_hash, token, done, status, headers, body, bytes, expires_at FROM ${this.#t} WHERE scope = $1 AND key = $2`,
      [scope, key],
    );
    return rows[0];
  }

  async #remove(client: Queryable, scope: string, key: string): Promise<void> {
    await client.query(
      `WITH gone AS (DELETE FROM ${this.#t} WHERE scope = $1 AND key = $2 RETURNING shard, bytes)
       UPDATE ${this.#t}_totals t SET entries = t.entries - 1, bytes = t.bytes - gone.bytes FROM gone WHERE t.shard = gone.shard`,
      [scope, key],
    );
  }

  /** How many records must go before one more of `bytes` fits: 0 when it fits now. */
  async #excess(client: Queryable, bytes: number): Promise<number> {
    const { rows } = await client.query<{ entries: string; bytes: string }>(
      `SELECT coalesce(sum(entries), 0) AS entries, coalesce(sum(bytes), 0) AS bytes FROM ${this.#t}_totals`,
    );
    const totals = rows[0] as { entries: string; bytes: string };
    const entries = Number(totals.entries) + 1 - this.#maxEntries;
    if (entries > 0) return entries;
    // Over by bytes: one at a time, oldest first, since their sizes differ.
    return Number(totals.bytes) + bytes > this.#maxBytes ? 1 : 0;
  }

  /** Room for one more record of `bytes`: expired records go first, then the oldest completed. */
  async #makeRoom(client: Queryable, bytes: number, now: number): Promise<boolean> {
    let excess = await this.#excess(client, bytes);
    if (excess === 0) return true;
    for (const [where, order] of [
      [`expires_at <= ${Number(now)}`, 'expires_at'],
      ['done', 'seq'],
    ] as const) {
      for (;;) {
        const removed = await this.#evict(client, where, order, Math.min(excess, EVICT_BATCH));
        excess = await this.#excess(client, bytes);
        if (excess === 0) return true;
        if (removed === 0) break;
      }
    }
    return false;
  }

  /** Deletes up to `limit` records matching `where`, in `order`, that no other transaction holds. */
  async #evict(client: Queryable, where: string, order: string, limit: number): Promise<number> {
    const { rows } = await client.query<{ n: string }>(
      `WITH gone AS (
         DELETE FROM ${this.#t} WHERE (scope, key) IN (
           SELECT scope, key FROM ${this.#t} WHERE ${where} ORDER BY ${order} LIMIT ${Math.max(1, Math.floor(limit))} FOR UPDATE SKIP LOCKED)
         RETURNING shard, bytes),
       sums AS (SELECT shard, count(*) AS n, sum(bytes) AS b FROM gone GROUP BY shard),
       adjusted AS (UPDATE ${this.#t}_totals t SET entries = t.entries - sums.n, bytes = t.bytes - sums.b FROM sums WHERE t.shard = sums.shard)
       SELECT coalesce(sum(n), 0) AS n FROM sums`,
    );
    return Number(rows[0]?.n ?? 0);
  }
}

function responseOf(row: Row): StoredResponse {
  return { status: row.status as number, headers: JSON.parse(row.headers ?? '{}') as Record<string, string>, body: row.body ?? '' };
}

export function createPostgresIdempotencyStore(options: PostgresIdempotencyStoreOptions): PostgresIdempotencyStore {
  return new PostgresIdempotencyStore(options);
}
