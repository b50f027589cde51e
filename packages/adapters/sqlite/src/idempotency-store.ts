import type {
  IdempotencyBegin,
  IdempotencyBeginResult,
  IdempotencyBounds,
  IdempotencyLock,
  IdempotencyStore,
  StoredResponse,
} from '@switchboard/core';
import { IDEMPOTENCY_FULL_RETRY_AFTER_MS, idempotencyRecordBytes, newSecretId, resolveIdempotencyBounds } from '@switchboard/core/kit';
import type BetterSqlite3 from 'better-sqlite3';
import { openStoreDatabase, runStoreCall, type StoreDatabaseOptions, tableName } from './store-database.js';

export interface SqliteIdempotencyStoreOptions extends StoreDatabaseOptions, IdempotencyBounds {
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

interface Row {
  request_hash: string;
  token: string;
  done: number;
  status: number | null;
  headers: string | null;
  body: string | null;
  bytes: number;
  expires_at: number;
}

interface Totals {
  entries: number;
  bytes: number;
}

const EVICT_BATCH = 64;

/**
 * `IdempotencyStore` on SQLite (WAL): keys survive restarts and are shared by every process that
 * opens the file. Each call is one `BEGIN IMMEDIATE` transaction, so `begin` is atomic across
 * processes.
 *
 * Schema: `<prefix>idempotency` (WITHOUT ROWID, primary key (scope, key); indexes on `expires_at`
 * and, for completed records, `seq`, the completion order that eviction follows) and `<prefix>idempotency_totals`,
 * one row counting records, bytes and completions, kept exact in the same transactions, so the bounds cost no scan.
 */
export class SqliteIdempotencyStore implements IdempotencyStore {
  readonly #db: BetterSqlite3.Database;
  readonly #ownsDatabase: boolean;
  readonly #clock: () => number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #select: BetterSqlite3.Statement<[string, string], Row>;
  readonly #insert: BetterSqlite3.Statement<[string, string, string, string, number, number]>;
  readonly #insertDone: BetterSqlite3.Statement<[string, string, string, string, number, string, string, number, number, number]>;
  readonly #delete: BetterSqlite3.Statement<[string, string]>;
  readonly #totals: BetterSqlite3.Statement<[], Totals>;
  readonly #adjust: BetterSqlite3.Statement<[number, number]>;
  readonly #nextSeq: BetterSqlite3.Statement<[]>;
  readonly #expired: BetterSqlite3.Statement<[number, number], { scope: string; key: string; bytes: number }>;
  readonly #oldestDone: BetterSqlite3.Statement<[number], { scope: string; key: string; bytes: number }>;
  readonly #beginTx: BetterSqlite3.Transaction<(request: IdempotencyBegin, token: string) => IdempotencyBeginResult>;
  readonly #completeTx: BetterSqlite3.Transaction<(lock: IdempotencyLock, response: StoredResponse, ttlMs: number) => void>;
  readonly #abandonTx: BetterSqlite3.Transaction<(lock: IdempotencyLock) => void>;
  readonly #purgeTx: BetterSqlite3.Transaction<() => number>;

  constructor(options: SqliteIdempotencyStoreOptions) {
    const bounds = resolveIdempotencyBounds(options);
    this.#maxEntries = bounds.maxEntries;
    this.#maxBytes = bounds.maxBytes;
    const { db, owns } = openStoreDatabase(options);
    this.#db = db;
    this.#ownsDatabase = owns;
    this.#clock = options.clock ?? Date.now;
    const t = tableName(options.tablePrefix, 'idempotency');
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${t} (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        token TEXT NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        status INTEGER,
        headers TEXT,
        body TEXT,
        bytes INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        completed_at INTEGER,
        seq INTEGER,
        PRIMARY KEY (scope, key)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${t}_expires ON ${t} (expires_at);
      CREATE INDEX IF NOT EXISTS ${t}_completed ON ${t} (seq) WHERE done = 1;
      CREATE TABLE IF NOT EXISTS ${t}_totals (
        id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL, bytes INTEGER NOT NULL, seq INTEGER NOT NULL
      );
      INSERT OR IGNORE INTO ${t}_totals (id, entries, bytes, seq) VALUES (1, 0, 0, 0);
    `);
    this.#select = db.prepare(
      `SELECT request_hash, token, done, status, headers, body, bytes, expires_at FROM ${t} WHERE scope = ? AND key = ?`,
    );
    this.#insert = db.prepare(`INSERT INTO ${t} (scope, key, request_hash, token, bytes, expires_at) VALUES (?, ?, ?, ?, ?, ?)`);
    this.#insertDone = db.prepare(
      `INSERT INTO ${t} (scope, key, request_hash, token, done, status, headers, body, bytes, expires_at, completed_at, seq)
       VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, (SELECT seq + 1 FROM ${t}_totals WHERE id = 1))`,
    );
    this.#delete = db.prepare(`DELETE FROM ${t} WHERE scope = ? AND key = ?`);
    this.#totals = db.prepare(`SELECT entries, bytes FROM ${t}_totals WHERE id = 1`);
    this.#adjust = db.prepare(`UPDATE ${t}_totals SET entries = entries + ?, bytes = bytes + ? WHERE id = 1`);
    this.#nextSeq = db.prepare(`UPDATE ${t}_totals SET seq = seq + 1 WHERE id = 1`);
    this.#expired = db.prepare(`SELECT scope, key, bytes FROM ${t} WHERE expires_at <= ? ORDER BY expires_at LIMIT ?`);
    this.#oldestDone = db.prepare(`SELECT scope, key, bytes FROM ${t} WHERE done = 1 ORDER BY seq LIMIT ?`);
    this.#beginTx = db.transaction((request, token) => this.#begin(request, token));
    this.#completeTx = db.transaction((lock, response, ttlMs) => this.#completeOne(lock, response, ttlMs));
    this.#abandonTx = db.transaction((lock) => {
      const row = this.#select.get(lock.scope, lock.key);
      if (row !== undefined && row.done === 0 && row.token === lock.token) this.#remove(lock.scope, lock.key, row.bytes);
    });
    this.#purgeTx = db.transaction(() =>
      this.#evict(
        () => this.#expired.all(this.#clock(), EVICT_BATCH),
        () => false,
      ),
    );
  }

  async begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult> {
    return runStoreCall('idempotency', () => this.#beginTx.immediate(request, newSecretId()));
  }

  async complete(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): Promise<void> {
    runStoreCall('idempotency', () => this.#completeTx.immediate(lock, response, ttlMs));
  }

  async abandon(lock: IdempotencyLock): Promise<void> {
    runStoreCall('idempotency', () => this.#abandonTx.immediate(lock));
  }

  /** Deletes expired records; answers how many. Expired records also go whenever room is needed. */
  async purge(): Promise<number> {
    return runStoreCall('idempotency', () => this.#purgeTx.immediate());
  }

  async close(): Promise<void> {
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }

  #begin(request: IdempotencyBegin, token: string): IdempotencyBeginResult {
    const now = this.#clock();
    const row = this.#select.get(request.scope, request.key);
    if (row !== undefined && row.expires_at > now) {
      if (row.request_hash !== request.requestHash) return { status: 'mismatch' };
      if (row.done === 0) return { status: 'in-progress' };
      return { status: 'replay', response: responseOf(row) };
    }
    if (row !== undefined) this.#remove(request.scope, request.key, row.bytes);
    const bytes = idempotencyRecordBytes(request.scope, request.key, request.requestHash);
    if (!this.#makeRoom(bytes, now)) return { status: 'full', retryAfterMs: IDEMPOTENCY_FULL_RETRY_AFTER_MS };
    this.#insert.run(request.scope, request.key, request.requestHash, token, bytes, now + request.lockMs);
    this.#adjust.run(1, bytes);
    return { status: 'started', token };
  }

  #completeOne(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): void {
    const row = this.#select.get(lock.scope, lock.key);
    if (row === undefined || row.done === 1 || row.token !== lock.token) return;
    const bytes = idempotencyRecordBytes(lock.scope, lock.key, row.request_hash, response);
    this.#remove(lock.scope, lock.key, row.bytes);
    const now = this.#clock();
    if (bytes > this.#maxBytes || !this.#makeRoom(bytes, now)) return;
    const headers = JSON.stringify(response.headers);
    this.#insertDone.run(
      lock.scope,
      lock.key,
      row.request_hash,
      lock.token,
      response.status,
      headers,
      response.body,
      bytes,
      now + ttlMs,
      now,
    );
    this.#nextSeq.run();
    this.#adjust.run(1, bytes);
  }

  /** Room for one more record of `bytes`: expired records go first, then the oldest completed. */
  #makeRoom(bytes: number, now: number): boolean {
    const fits = (): boolean => {
      const totals = this.#totals.get() as Totals;
      return totals.entries < this.#maxEntries && totals.bytes + bytes <= this.#maxBytes;
    };
    if (fits()) return true;
    this.#evict(() => this.#expired.all(now, EVICT_BATCH), fits);
    if (fits()) return true;
    this.#evict(() => this.#oldestDone.all(EVICT_BATCH), fits);
    return fits();
  }

  /** Deletes the rows `next()` selects, a batch at a time, until `enough()` or none is left. */
  #evict(next: () => Array<{ scope: string; key: string; bytes: number }>, enough: () => boolean): number {
    let removed = 0;
    for (;;) {
      const rows = next();
      if (rows.length === 0) return removed;
      for (const row of rows) {
        this.#remove(row.scope, row.key, row.bytes);
        removed++;
        if (enough()) return removed;
      }
    }
  }

  #remove(scope: string, key: string, bytes: number): void {
    if (this.#delete.run(scope, key).changes > 0) this.#adjust.run(-1, -bytes);
  }
}

function responseOf(row: Row): StoredResponse {
  return { status: row.status as number, headers: JSON.parse(row.headers ?? '{}') as Record<string, string>, body: row.body ?? '' };
}

export function createSqliteIdempotencyStore(options: SqliteIdempotencyStoreOptions): SqliteIdempotencyStore {
  return new SqliteIdempotencyStore(options);
}
