import type {
  ListPage,
  ProblemDetails,
  Receipt,
  ReceiptClaim,
  ReceiptClaimResult,
  ReceiptKey,
  ReceiptListFilter,
  ReceiptPurgeOptions,
  ReceiptState,
  ReceiptStore,
  ReceiptUpdate,
  RecordOutcome,
} from '@switchboard/core';
import {
  assertStorableIdentity,
  decideClaim,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  mergeReceipt,
  reopenReceipt,
} from '@switchboard/core/kit';
import type BetterSqlite3 from 'better-sqlite3';
import { assertTableLayout, openStoreDatabase, runStoreCall, type StoreDatabaseOptions, tableName } from './store-database.js';

export interface SqliteReceiptStoreOptions extends StoreDatabaseOptions {
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

interface ReceiptRow {
  message_id: string;
  source: string;
  grp: string;
  state: ReceiptState;
  type: string | null;
  topic: string | null;
  attempts: number;
  received_at: number;
  updated_at: number;
  processed_at: number | null;
  error: string | null;
  result: string | null;
  lease_owner: string | null;
  lease_until: number | null;
  sender: string | null;
}

/** A full row as positional parameters, in column order (positional binding is cheaper than named). */
type RowValues = [
  messageId: string,
  source: string,
  group: string,
  state: ReceiptState,
  type: string | null,
  topic: string | null,
  attempts: number,
  receivedAt: number,
  updatedAt: number,
  processedAt: number | null,
  error: string | null,
  result: string | null,
  leaseOwner: string | null,
  leaseUntil: number | null,
  sender: string | null,
];

/** Parameters of the `processed` fast path: type, topic, attempt, at (updated), at (processed), result, message_id, source, grp. */
type ProcessedValues = [string | null, string | null, number, number, number, string | null, string, string, string];

const COLUMNS =
  'message_id, source, grp, state, type, topic, attempts, received_at, updated_at, processed_at, error, result, lease_owner, lease_until, sender';
const KEY = 'message_id, source, grp';
const PLACEHOLDERS = '?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?';

const PURGE_CHUNK = 1000;

/**
 * `ReceiptStore` on SQLite (WAL). Several processes may share the file. Every batch runs in one
 * `BEGIN IMMEDIATE` transaction with prepared statements.
 *
 * Schema (`<prefix>receipts`, WITHOUT ROWID): primary key (message_id, source, grp) — an event's
 * identity is (source, id), and `getAll(messageId, source?)` is a prefix scan of the key; indexes on
 * (received_at, grp, source, message_id) for `list` and (updated_at) for `purge`. `error` is the
 * problem document as JSON text. A key over the identity limits is refused (`SB_STORE_REFUSED`)
 * before the batch's transaction starts.
 *
 * To commit a handler's writes and the `processed` mark together, open the store on the
 * application's database handle and call `recordSync` inside the application's own transaction,
 * before the writes: when it answers `ignored`, another run already committed, and the writes must
 * be skipped (a handler that outlived its lease would otherwise repeat them).
 */
export class SqliteReceiptStore implements ReceiptStore {
  readonly #db: BetterSqlite3.Database;
  readonly #ownsDatabase: boolean;
  readonly #clock: () => number;
  readonly #table: string;
  readonly #select: BetterSqlite3.Statement<[string, string, string], ReceiptRow>;
  readonly #selectAll: BetterSqlite3.Statement<[string], ReceiptRow>;
  readonly #selectBySource: BetterSqlite3.Statement<[string, string], ReceiptRow>;
  readonly #upsert: BetterSqlite3.Statement<RowValues>;
  readonly #insertNew: BetterSqlite3.Statement<RowValues>;
  readonly #markProcessed: BetterSqlite3.Statement<ProcessedValues>;
  readonly #listStatements = new Map<string, BetterSqlite3.Statement<unknown[], ReceiptRow>>();
  readonly #recordTx: BetterSqlite3.Transaction<(updates: readonly ReceiptUpdate[]) => RecordOutcome[]>;
  readonly #claimTx: BetterSqlite3.Transaction<(requests: readonly ReceiptClaim[]) => ReceiptClaimResult[]>;
  readonly #recordAndClaimTx: BetterSqlite3.Transaction<
    (updates: readonly ReceiptUpdate[], requests: readonly ReceiptClaim[]) => { outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }
  >;
  readonly #reopenTx: BetterSqlite3.Transaction<(keys: readonly ReceiptKey[]) => number>;
  readonly #extendTx: BetterSqlite3.Transaction<(key: ReceiptKey, owner: string, leaseMs: number) => boolean>;

  constructor(options: SqliteReceiptStoreOptions) {
    const { db, owns } = openStoreDatabase(options);
    this.#db = db;
    this.#ownsDatabase = owns;
    this.#clock = options.clock ?? Date.now;
    this.#table = tableName(options.tablePrefix, 'receipts');
    const t = this.#table;
    assertTableLayout(db, t, { primaryKey: ['message_id', 'source', 'grp'] });
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${t} (
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        grp TEXT NOT NULL,
        state TEXT NOT NULL,
        type TEXT,
        topic TEXT,
        attempts INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        processed_at INTEGER,
        error TEXT,
        result TEXT,
        lease_owner TEXT,
        lease_until INTEGER,
        sender TEXT,
        PRIMARY KEY (message_id, source, grp)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS ${t}_received ON ${t} (received_at, grp, source, message_id);
      CREATE INDEX IF NOT EXISTS ${t}_updated ON ${t} (updated_at);
    `);
    // Tables of versions before the sender was kept get its column (NULL: no sender known).
    const known = db.prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)').all(t);
    if (!known.some((c) => c.name === 'sender')) db.exec(`ALTER TABLE ${t} ADD COLUMN sender TEXT`);
    this.#select = db.prepare<[string, string, string], ReceiptRow>(`SELECT * FROM ${t} WHERE message_id = ? AND source = ? AND grp = ?`);
    this.#selectAll = db.prepare<[string], ReceiptRow>(`SELECT * FROM ${t} WHERE message_id = ? ORDER BY source, grp`);
    this.#selectBySource = db.prepare<[string, string], ReceiptRow>(`SELECT * FROM ${t} WHERE message_id = ? AND source = ? ORDER BY grp`);
    this.#upsert = db.prepare<RowValues>(`
      INSERT INTO ${t} (${COLUMNS}) VALUES (${PLACEHOLDERS})
      ON CONFLICT (${KEY}) DO UPDATE SET
        state = excluded.state, type = excluded.type, topic = excluded.topic,
        attempts = excluded.attempts, updated_at = excluded.updated_at, processed_at = excluded.processed_at,
        error = excluded.error, result = excluded.result, lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
    `);
    // The common cases in one statement each, without reading the row first:
    // - a record that does not exist yet (a first claim, a first `received`): insert it, or nothing;
    this.#insertNew = db.prepare<RowValues>(`INSERT INTO ${t} (${COLUMNS}) VALUES (${PLACEHOLDERS}) ON CONFLICT (${KEY}) DO NOTHING`);
    // - `processed` over an existing record: `mergeReceipt` for a processed update, in SQL. It applies
    //   to every state but `processed`, keeps `received_at` and the known type/topic, takes the
    //   highest attempt, clears the error and the lease, and sets the result and `processed_at`.
    this.#markProcessed = db.prepare<ProcessedValues>(`
      UPDATE ${t} SET state = 'processed', type = coalesce(?, type), topic = coalesce(?, topic),
        attempts = max(attempts, ?), updated_at = max(updated_at, ?), processed_at = ?, error = NULL, result = ?,
        lease_owner = NULL, lease_until = NULL
      WHERE message_id = ? AND source = ? AND grp = ? AND state <> 'processed'
    `);
    this.#recordTx = db.transaction((updates: readonly ReceiptUpdate[]) => {
      const now = this.#clock();
      const outcomes: RecordOutcome[] = new Array(updates.length);
      for (let i = 0; i < updates.length; i++) outcomes[i] = this.#apply(updates[i]!, now);
      return outcomes;
    });
    this.#claimTx = db.transaction((requests: readonly ReceiptClaim[]) => {
      const now = this.#clock();
      const results: ReceiptClaimResult[] = new Array(requests.length);
      for (let i = 0; i < requests.length; i++) results[i] = this.#claim(requests[i]!, now);
      return results;
    });
    this.#recordAndClaimTx = db.transaction((updates: readonly ReceiptUpdate[], requests: readonly ReceiptClaim[]) => {
      const now = this.#clock();
      const outcomes: RecordOutcome[] = new Array(updates.length);
      for (let i = 0; i < updates.length; i++) outcomes[i] = this.#apply(updates[i]!, now);
      const claims: ReceiptClaimResult[] = new Array(requests.length);
      for (let i = 0; i < requests.length; i++) claims[i] = this.#claim(requests[i]!, now);
      return { outcomes, claims };
    });
    this.#reopenTx = db.transaction((keys: readonly ReceiptKey[]) => {
      const now = this.#clock();
      let count = 0;
      for (const key of keys) {
        const current = this.#read(key);
        const next = current === undefined ? undefined : reopenReceipt(current, now);
        if (next !== undefined) {
          this.#upsert.run(...toValues(next));
          count++;
        }
      }
      return count;
    });
    this.#extendTx = db.transaction((key: ReceiptKey, owner: string, leaseMs: number) => {
      const current = this.#read(key);
      if (current === undefined || current.state !== 'processing' || current.leaseOwner !== owner) return false;
      const now = this.#clock();
      this.#upsert.run(...toValues({ ...current, leaseUntil: now + leaseMs, updatedAt: Math.max(now, current.updatedAt) }));
      return true;
    });
  }

  /**
   * `record`, synchronously. Inside an application transaction on the same database handle it joins
   * that transaction (as a savepoint), so the `processed` mark commits or rolls back with the
   * handler's own writes.
   */
  recordSync(updates: readonly ReceiptUpdate[]): RecordOutcome[] {
    assertKeys(updates);
    return runStoreCall('receipt', () => this.#recordTx.immediate(updates));
  }

  /** `claimBatch`, synchronously (joins an open transaction on the same handle). */
  claimBatchSync(requests: readonly ReceiptClaim[]): ReceiptClaimResult[] {
    assertKeys(requests);
    return runStoreCall('receipt', () => this.#claimTx.immediate(requests));
  }

  async record(updates: readonly ReceiptUpdate[]): Promise<RecordOutcome[]> {
    return this.recordSync(updates);
  }

  async claim(request: ReceiptClaim): Promise<ReceiptClaimResult> {
    const [result] = this.claimBatchSync([request]);
    return result as ReceiptClaimResult;
  }

  async claimBatch(requests: readonly ReceiptClaim[]): Promise<ReceiptClaimResult[]> {
    return this.claimBatchSync(requests);
  }

  /** `record(updates)` then `claimBatch(requests)` in one transaction. */
  async recordAndClaim(
    updates: readonly ReceiptUpdate[],
    requests: readonly ReceiptClaim[],
  ): Promise<{ outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }> {
    assertKeys(updates);
    assertKeys(requests);
    return runStoreCall('receipt', () => this.#recordAndClaimTx.immediate(updates, requests));
  }

  async extendLease(key: ReceiptKey, owner: string, leaseMs: number): Promise<boolean> {
    return runStoreCall('receipt', () => this.#extendTx.immediate(key, owner, leaseMs));
  }

  async reopen(keys: readonly ReceiptKey[]): Promise<number> {
    return runStoreCall('receipt', () => this.#reopenTx.immediate(keys));
  }

  async get(key: ReceiptKey): Promise<Receipt | undefined> {
    return runStoreCall('receipt', () => this.#read(key));
  }

  async getAll(messageId: string, source?: string): Promise<Receipt[]> {
    return runStoreCall('receipt', () =>
      (source === undefined ? this.#selectAll.all(messageId) : this.#selectBySource.all(messageId, source)).map(fromRow),
    );
  }

  async list(filter: ReceiptListFilter = {}): Promise<ListPage<Receipt>> {
    const limit = listPageLimit(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeListCursor(filter.cursor, 4);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      where.push(clause);
      params.push(value);
    };
    if (filter.group !== undefined) add('grp = ?', filter.group);
    if (filter.source !== undefined) add('source = ?', filter.source);
    if (filter.state !== undefined) add('state = ?', filter.state);
    if (filter.type !== undefined) add('type = ?', filter.type);
    if (filter.topic !== undefined) add('topic = ?', filter.topic);
    if (filter.receivedFrom !== undefined) add('received_at >= ?', filter.receivedFrom);
    if (filter.receivedTo !== undefined) add('received_at < ?', filter.receivedTo);
    if (after !== undefined) {
      where.push('(received_at, grp, source, message_id) > (?, ?, ?, ?)');
      params.push(...after);
    }
    const sql = `SELECT * FROM ${this.#table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at, grp, source, message_id LIMIT ?`;
    params.push(limit + 1);
    return runStoreCall('receipt', () => {
      let statement = this.#listStatements.get(sql);
      if (statement === undefined) {
        statement = this.#db.prepare<unknown[], ReceiptRow>(sql);
        this.#listStatements.set(sql, statement);
      }
      const rows = statement.all(...params);
      const items = rows.slice(0, limit).map(fromRow);
      const last = items.at(-1);
      return rows.length > limit && last !== undefined
        ? { items, nextCursor: encodeListCursor([last.receivedAt, last.group, last.source, last.messageId]) }
        : { items };
    });
  }

  async purge(olderThan: number, options: ReceiptPurgeOptions = {}): Promise<number> {
    const states = options.states;
    if (states !== undefined && states.length === 0) return 0;
    const stateClause = states === undefined ? '' : ` AND state IN (${states.map(() => '?').join(', ')})`;
    const t = this.#table;
    const statement = runStoreCall('receipt', () =>
      this.#db.prepare(
        `DELETE FROM ${t} WHERE (${KEY}) IN (SELECT ${KEY} FROM ${t} WHERE updated_at < ?${stateClause} LIMIT ${PURGE_CHUNK})`,
      ),
    );
    let total = 0;
    // Deletes in chunks, one short transaction each, so other processes are not locked out for long.
    for (;;) {
      const { changes } = runStoreCall('receipt', () => statement.run(olderThan, ...(states ?? [])));
      total += changes;
      if (changes < PURGE_CHUNK) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }

  /** One request of `claimBatch`: the rule is core's `decideClaim`; a first claim skips reading the row. */
  #claim(request: ReceiptClaim, now: number): ReceiptClaimResult {
    // A MessageId this group never saw (the usual case) is claimed by inserting its record.
    const fresh = firstClaim(request, now);
    if (this.#insertNew.run(...toValues(fresh)).changes === 1) return { outcome: 'claimed', receipt: fresh };
    const result = decideClaim(this.#read(request), request, now);
    if (result.outcome === 'claimed') this.#upsert.run(...toValues(result.receipt));
    return result;
  }

  /** One update of `record`: the rule is core's `mergeReceipt`; the common cases skip reading the row. */
  #apply(update: ReceiptUpdate, now: number): RecordOutcome {
    if (update.state === 'processed') {
      const at = update.at ?? now;
      const changed = this.#markProcessed.run(
        update.type ?? null,
        update.topic ?? null,
        Math.max(update.attempt ?? 1, 1),
        at,
        at,
        update.result ?? null,
        update.messageId,
        update.source,
        update.group,
      ).changes;
      if (changed === 1) return 'updated';
      // No record (create it) or already processed (the insert does nothing).
      return this.#insertNew.run(...toValues(mergeReceipt(undefined, update, now)!)).changes === 1 ? 'created' : 'ignored';
    }
    if (update.state === 'received' || update.state === 'processing') {
      if (this.#insertNew.run(...toValues(mergeReceipt(undefined, update, now)!)).changes === 1) return 'created';
    }
    const current = this.#read(update);
    const next = mergeReceipt(current, update, now);
    if (next === undefined) return 'ignored';
    this.#upsert.run(...toValues(next));
    return current === undefined ? 'created' : 'updated';
  }

  #read(key: ReceiptKey): Receipt | undefined {
    const row = this.#select.get(key.messageId, key.source, key.group);
    return row === undefined ? undefined : fromRow(row);
  }
}

/**
 * The record of a first claim: `decideClaim(undefined, request, now).receipt`, built without the
 * general merge (this is the hot path of every consumer with an inbox; a test keeps them equal).
 */
function firstClaim(request: ReceiptClaim, now: number): Receipt {
  const receipt: {
    -readonly [K in keyof Receipt]: Receipt[K];
  } = {
    group: request.group,
    source: request.source,
    messageId: request.messageId,
    state: 'processing',
    attempts: 1,
    receivedAt: now,
    updatedAt: now,
  };
  if (request.type !== undefined) receipt.type = request.type;
  if (request.topic !== undefined) receipt.topic = request.topic;
  if (request.sender !== undefined) receipt.sender = request.sender;
  receipt.leaseOwner = request.owner;
  receipt.leaseUntil = now + request.leaseMs;
  return receipt;
}

function toValues(receipt: Receipt): RowValues {
  return [
    receipt.messageId,
    receipt.source,
    receipt.group,
    receipt.state,
    receipt.type ?? null,
    receipt.topic ?? null,
    receipt.attempts,
    receipt.receivedAt,
    receipt.updatedAt,
    receipt.processedAt ?? null,
    receipt.error === undefined ? null : JSON.stringify(receipt.error),
    receipt.result ?? null,
    receipt.leaseOwner ?? null,
    receipt.leaseUntil ?? null,
    receipt.sender ?? null,
  ];
}

function fromRow(row: ReceiptRow): Receipt {
  return {
    group: row.grp,
    source: row.source,
    messageId: row.message_id,
    state: row.state,
    ...(row.type === null ? {} : { type: row.type }),
    ...(row.topic === null ? {} : { topic: row.topic }),
    attempts: row.attempts,
    receivedAt: row.received_at,
    updatedAt: row.updated_at,
    ...(row.processed_at === null ? {} : { processedAt: row.processed_at }),
    ...(row.error === null ? {} : { error: JSON.parse(row.error) as ProblemDetails }),
    ...(row.result === null ? {} : { result: row.result }),
    ...(row.lease_owner === null ? {} : { leaseOwner: row.lease_owner }),
    ...(row.lease_until === null ? {} : { leaseUntil: row.lease_until }),
    ...(row.sender === null || row.sender === undefined ? {} : { sender: row.sender }),
  };
}

/** Refuses the whole batch, before its transaction, when one key is over the identity limits. */
function assertKeys(keys: readonly ReceiptKey[]): void {
  for (let i = 0; i < keys.length; i++) assertStorableIdentity('receipt', keys[i] as ReceiptKey);
}

export function createSqliteReceiptStore(options: SqliteReceiptStoreOptions): SqliteReceiptStore {
  return new SqliteReceiptStore(options);
}
