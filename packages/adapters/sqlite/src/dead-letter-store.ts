import {
  type DeadLetter,
  type DeadLetterAttempt,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterReason,
  type DeadLetterStatus,
  type DeadLetterStore,
  type DeadLetterSummary,
  type DeadLetterTakeOptions,
  type Headers,
  type ListPage,
  type NewDeadLetter,
  newMessageId,
} from '@switchboard/core';
import { assertStorableIdentity, decodeListCursor, encodeListCursor, listPageLimit, mergeAttempts } from '@switchboard/core/kit';
import type BetterSqlite3 from 'better-sqlite3';
import { assertTableLayout, openStoreDatabase, runStoreCall, type StoreDatabaseOptions, tableName } from './store-database.js';

export interface SqliteDeadLetterStoreOptions extends StoreDatabaseOptions {
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

interface SummaryRow {
  id: string;
  message_id: string;
  source: string;
  topic: string;
  grp: string;
  type: string | null;
  msg_key: string | null;
  reason: string;
  detail: string | null;
  attempts: string;
  dead_lettered_at: number;
  status: DeadLetterStatus;
  replay_count: number;
  replayed_at: number | null;
  replay_owner: string | null;
  replay_lease_until: number | null;
  size: number;
}

interface FullRow extends SummaryRow {
  headers: string;
  body: Buffer;
}

const SUMMARY_COLUMNS =
  'id, message_id, source, topic, grp, type, msg_key, reason, detail, attempts, dead_lettered_at, status, replay_count, replayed_at, replay_owner, replay_lease_until, size';

/**
 * `DeadLetterStore` on SQLite (WAL). Several processes may share the file; `take` claims entries in
 * one `BEGIN IMMEDIATE` transaction, so two replayers never take the same live entry.
 *
 * Schema (`<prefix>dead_letters`): primary key id (UUIDv7); body as BLOB, headers and attempts as
 * JSON text; index (dead_lettered_at, id) for ordering and paging; a partial unique index on
 * (grp, source, message_id) over entries not yet replayed, which makes `add` idempotent per event
 * and group.
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  readonly #db: BetterSqlite3.Database;
  readonly #ownsDatabase: boolean;
  readonly #clock: () => number;
  readonly #table: string;
  readonly #statements = new Map<string, BetterSqlite3.Statement<unknown[], FullRow>>();
  readonly #findActive: BetterSqlite3.Statement<[string, string, string], FullRow>;
  readonly #insert: BetterSqlite3.Statement<FullRow>;
  readonly #setAttempts: BetterSqlite3.Statement<[string, string]>;
  readonly #getById: BetterSqlite3.Statement<[string], FullRow>;
  readonly #addTx: BetterSqlite3.Transaction<(entries: readonly NewDeadLetter[]) => DeadLetter[]>;
  readonly #takeTx: BetterSqlite3.Transaction<(options: DeadLetterTakeOptions) => DeadLetter[]>;
  readonly #settleTx: BetterSqlite3.Transaction<(sql: string, ids: readonly string[], owner: string, now: number) => number>;

  constructor(options: SqliteDeadLetterStoreOptions) {
    const { db, owns } = openStoreDatabase(options);
    this.#db = db;
    this.#ownsDatabase = owns;
    this.#clock = options.clock ?? Date.now;
    this.#table = tableName(options.tablePrefix, 'dead_letters');
    const t = this.#table;
    assertTableLayout(db, t, { columns: ['source'] });
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${t} (
        id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        source TEXT NOT NULL,
        topic TEXT NOT NULL,
        grp TEXT NOT NULL,
        type TEXT,
        msg_key TEXT,
        reason TEXT NOT NULL,
        detail TEXT,
        attempts TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        size INTEGER NOT NULL,
        dead_lettered_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        replay_count INTEGER NOT NULL,
        replayed_at INTEGER,
        replay_owner TEXT,
        replay_lease_until INTEGER
      );
      CREATE INDEX IF NOT EXISTS ${t}_order ON ${t} (dead_lettered_at, id);
      CREATE UNIQUE INDEX IF NOT EXISTS ${t}_active ON ${t} (grp, source, message_id) WHERE status <> 'replayed';
    `);
    this.#findActive = db.prepare<[string, string, string], FullRow>(
      `SELECT * FROM ${t} WHERE grp = ? AND source = ? AND message_id = ? AND status <> 'replayed'`,
    );
    this.#getById = db.prepare<[string], FullRow>(`SELECT * FROM ${t} WHERE id = ?`);
    this.#insert = db.prepare<FullRow>(`
      INSERT INTO ${t} (id, message_id, source, topic, grp, type, msg_key, reason, detail, attempts, headers, body, size, dead_lettered_at, status, replay_count, replayed_at, replay_owner, replay_lease_until)
      VALUES (@id, @message_id, @source, @topic, @grp, @type, @msg_key, @reason, @detail, @attempts, @headers, @body, @size, @dead_lettered_at, @status, @replay_count, @replayed_at, @replay_owner, @replay_lease_until)
    `);
    this.#setAttempts = db.prepare<[string, string]>(`UPDATE ${t} SET attempts = ? WHERE id = ?`);
    this.#addTx = db.transaction((entries: readonly NewDeadLetter[]) => entries.map((entry) => this.#addOne(entry)));
    this.#takeTx = db.transaction((options: DeadLetterTakeOptions) => {
      const now = this.#clock();
      const { where, params } = filterSql({ ...options, status: 'pending' }, now);
      if (options.ids !== undefined) {
        where.push('id IN (SELECT value FROM json_each(?))');
        params.push(JSON.stringify(options.ids));
      }
      const rows = this.#prepared(`SELECT * FROM ${t} WHERE ${where.join(' AND ')} ORDER BY dead_lettered_at, id LIMIT ?`).all(
        ...params,
        listPageLimit(options.limit),
      );
      const claim = this.#prepared(`UPDATE ${t} SET status = 'replaying', replay_owner = ?, replay_lease_until = ? WHERE id = ?`);
      const until = now + options.leaseMs;
      return rows.map((row) => {
        claim.run(options.owner, until, row.id);
        return fromRow({ ...row, status: 'replaying', replay_owner: options.owner, replay_lease_until: until }, now);
      });
    });
    this.#settleTx = db.transaction((sql: string, ids: readonly string[], owner: string, now: number) => {
      const statement = this.#prepared(sql);
      let count = 0;
      for (const id of new Set(ids)) count += statement.run(...(sql.includes('replayed_at = ?') ? [now, id, owner] : [id, owner])).changes;
      return count;
    });
  }

  async add(entry: NewDeadLetter): Promise<DeadLetter> {
    assertStorableIdentity('dead-letter', entry);
    const [added] = runStoreCall('dead-letter', () => this.#addTx.immediate([entry]));
    return added as DeadLetter;
  }

  async addBatch(entries: readonly NewDeadLetter[]): Promise<DeadLetter[]> {
    for (const entry of entries) assertStorableIdentity('dead-letter', entry);
    return runStoreCall('dead-letter', () => this.#addTx.immediate(entries));
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    return runStoreCall('dead-letter', () => {
      const row = this.#getById.get(id);
      return row === undefined ? undefined : fromRow(row, this.#clock());
    });
  }

  async list(options: DeadLetterListOptions = {}): Promise<ListPage<DeadLetterSummary>> {
    const limit = listPageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeListCursor(options.cursor, 2);
    return runStoreCall('dead-letter', () => {
      const now = this.#clock();
      const { where, params } = filterSql(options, now);
      if (after !== undefined) {
        where.push('(dead_lettered_at, id) > (?, ?)');
        params.push(...after);
      }
      const sql = `SELECT ${SUMMARY_COLUMNS} FROM ${this.#table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY dead_lettered_at, id LIMIT ?`;
      const rows = this.#prepared(sql).all(...params, limit + 1) as SummaryRow[];
      const items = rows.slice(0, limit).map((row) => summaryFromRow(row, now));
      const last = items.at(-1);
      return rows.length > limit && last !== undefined
        ? { items, nextCursor: encodeListCursor([last.deadLetteredAt, last.id]) }
        : { items };
    });
  }

  async take(options: DeadLetterTakeOptions): Promise<DeadLetter[]> {
    return runStoreCall('dead-letter', () => this.#takeTx.immediate(options));
  }

  async markReplayed(ids: readonly string[], owner: string): Promise<number> {
    const sql = `UPDATE ${this.#table} SET status = 'replayed', replayed_at = ?, replay_count = replay_count + 1, replay_owner = NULL, replay_lease_until = NULL WHERE id = ? AND status = 'replaying' AND replay_owner = ?`;
    return runStoreCall('dead-letter', () => this.#settleTx.immediate(sql, ids, owner, this.#clock()));
  }

  async release(ids: readonly string[], owner: string): Promise<number> {
    const sql = `UPDATE ${this.#table} SET status = 'pending', replay_owner = NULL, replay_lease_until = NULL WHERE id = ? AND status = 'replaying' AND replay_owner = ?`;
    return runStoreCall('dead-letter', () => this.#settleTx.immediate(sql, ids, owner, this.#clock()));
  }

  async remove(ids: readonly string[]): Promise<number> {
    return runStoreCall('dead-letter', () =>
      this.#db
        .transaction(() => {
          const statement = this.#prepared(`DELETE FROM ${this.#table} WHERE id = ?`);
          let count = 0;
          for (const id of new Set(ids)) count += statement.run(id).changes;
          return count;
        })
        .immediate(),
    );
  }

  async purge(olderThan: number, options: { readonly onlyReplayed?: boolean } = {}): Promise<number> {
    const sql = `DELETE FROM ${this.#table} WHERE dead_lettered_at < ?${options.onlyReplayed === true ? ` AND status = 'replayed'` : ''}`;
    return runStoreCall('dead-letter', () => this.#prepared(sql).run(olderThan).changes);
  }

  async close(): Promise<void> {
    if (this.#ownsDatabase && this.#db.open) this.#db.close();
  }

  #addOne(entry: NewDeadLetter): DeadLetter {
    const now = this.#clock();
    const existing = this.#findActive.get(entry.group, entry.source, entry.messageId);
    if (existing !== undefined) {
      const attempts = mergeAttempts(JSON.parse(existing.attempts) as DeadLetterAttempt[], entry.attempts);
      const json = JSON.stringify(attempts);
      this.#setAttempts.run(json, existing.id);
      return fromRow({ ...existing, attempts: json }, now);
    }
    const row: FullRow = {
      id: newMessageId(),
      message_id: entry.messageId,
      source: entry.source,
      topic: entry.topic,
      grp: entry.group,
      type: entry.type ?? null,
      msg_key: entry.key ?? null,
      reason: entry.reason,
      detail: entry.detail ?? null,
      attempts: JSON.stringify(mergeAttempts([], entry.attempts)),
      headers: JSON.stringify(entry.headers),
      body: Buffer.from(entry.body.buffer, entry.body.byteOffset, entry.body.byteLength),
      size: entry.body.byteLength,
      dead_lettered_at: entry.deadLetteredAt ?? now,
      status: 'pending',
      replay_count: 0,
      replayed_at: null,
      replay_owner: null,
      replay_lease_until: null,
    };
    this.#insert.run(row);
    return fromRow({ ...row, body: Buffer.from(row.body) }, now);
  }

  #prepared(sql: string): BetterSqlite3.Statement<unknown[], FullRow> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare<unknown[], FullRow>(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function filterSql(filter: DeadLetterFilter, now: number): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, ...values: unknown[]) => {
    where.push(clause);
    params.push(...values);
  };
  if (filter.topic !== undefined) add('topic = ?', filter.topic);
  if (filter.group !== undefined) add('grp = ?', filter.group);
  if (filter.type !== undefined) add('type = ?', filter.type);
  if (filter.reason !== undefined) add('reason = ?', filter.reason);
  if (filter.messageId !== undefined) add('message_id = ?', filter.messageId);
  if (filter.source !== undefined) add('source = ?', filter.source);
  if (filter.from !== undefined) add('dead_lettered_at >= ?', filter.from);
  if (filter.to !== undefined) add('dead_lettered_at < ?', filter.to);
  switch (filter.status) {
    case undefined:
      break;
    case 'pending':
      add(`(status = 'pending' OR (status = 'replaying' AND replay_lease_until <= ?))`, now);
      break;
    case 'replaying':
      add(`status = 'replaying' AND replay_lease_until > ?`, now);
      break;
    case 'replayed':
      add(`status = 'replayed'`);
      break;
  }
  return { where, params };
}

function summaryFromRow(row: SummaryRow, now: number): DeadLetterSummary {
  const leaseLive = row.status === 'replaying' && (row.replay_lease_until ?? 0) > now;
  const status: DeadLetterStatus = row.status === 'replaying' && !leaseLive ? 'pending' : row.status;
  return {
    id: row.id,
    messageId: row.message_id,
    source: row.source,
    topic: row.topic,
    group: row.grp,
    ...(row.type === null ? {} : { type: row.type }),
    ...(row.msg_key === null ? {} : { key: row.msg_key }),
    reason: row.reason as DeadLetterReason,
    ...(row.detail === null ? {} : { detail: row.detail }),
    attempts: JSON.parse(row.attempts) as DeadLetterAttempt[],
    deadLetteredAt: row.dead_lettered_at,
    status,
    replayCount: row.replay_count,
    ...(row.replayed_at === null ? {} : { replayedAt: row.replayed_at }),
    ...(leaseLive && row.replay_owner !== null ? { replayOwner: row.replay_owner } : {}),
    ...(leaseLive && row.replay_lease_until !== null ? { replayLeaseUntil: row.replay_lease_until } : {}),
    size: row.size,
  };
}

function fromRow(row: FullRow, now: number): DeadLetter {
  return { ...summaryFromRow(row, now), headers: JSON.parse(row.headers) as Headers, body: new Uint8Array(row.body) };
}

export function createSqliteDeadLetterStore(options: SqliteDeadLetterStoreOptions): SqliteDeadLetterStore {
  return new SqliteDeadLetterStore(options);
}
