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
import { lockKeys, optionalNumber, PostgresStoreConnection, type PostgresStoreOptions, type TableLayoutCheck } from './store-connection.js';

export interface PostgresDeadLetterStoreOptions extends PostgresStoreOptions {
  /** Table name (lower-case letters, digits, `_`). Default `switchboard_dead_letters`. */
  readonly table?: string;
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
  dead_lettered_at: string;
  status: DeadLetterStatus;
  replay_count: number;
  replayed_at: string | null;
  replay_owner: string | null;
  replay_lease_until: string | null;
  size: number;
}

interface FullRow extends SummaryRow {
  headers: string;
  body: Buffer;
}

const SUMMARY_COLUMNS =
  'id, message_id, source, topic, grp, type, msg_key, reason, detail, attempts, dead_lettered_at, status, replay_count, replayed_at, replay_owner, replay_lease_until, size';

function schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  id TEXT COLLATE "C" PRIMARY KEY,
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
  body BYTEA NOT NULL,
  size INTEGER NOT NULL,
  dead_lettered_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  replay_count INTEGER NOT NULL DEFAULT 0,
  replayed_at BIGINT,
  replay_owner TEXT,
  replay_lease_until BIGINT
);
CREATE INDEX IF NOT EXISTS ${t}_order ON ${t} (dead_lettered_at, id);
CREATE UNIQUE INDEX IF NOT EXISTS ${t}_active ON ${t} (grp, source, message_id) WHERE status <> 'replayed';`;
}

/** A table of an earlier layout has no `source` column. */
const LAYOUT: TableLayoutCheck = {
  sql: `SELECT to_regclass($1) IS NULL OR EXISTS (
      SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'source' AND NOT attisdropped) AS ok`,
  expected: 'a source column and the unique index (grp, source, message_id)',
};

/**
 * `DeadLetterStore` on PostgreSQL. `addBatch` is one transaction (advisory locks on the batch's
 * (group, source, MessageId) keys, one read of their live entries, `mergeAttempts` from core, one multi-row
 * insert and one multi-row update); `take` is one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
 * LOCKED)`, so concurrent replayers on any hosts never take the same live entry.
 *
 * Schema (`<table>`): primary key id (UUIDv7, byte-order collation); `body` BYTEA with the exact
 * bytes; `headers` and `attempts` as JSON text (kept verbatim); index (dead_lettered_at, id) for
 * ordering and paging; a partial unique index on (grp, source, message_id) over entries not yet
 * replayed, which backs the idempotent `add`. Ids and sources over the identity limits are refused
 * before the transaction; values the server refuses fail the batch with `SB_STORE_REFUSED`.
 */
export class PostgresDeadLetterStore implements DeadLetterStore {
  readonly #db: PostgresStoreConnection;
  readonly #clock: () => number;
  readonly #t: string;

  constructor(options: PostgresDeadLetterStoreOptions) {
    this.#db = new PostgresStoreConnection('dead-letter', options, options.table ?? 'switchboard_dead_letters', schema, LAYOUT);
    this.#clock = options.clock ?? Date.now;
    this.#t = this.#db.table;
  }

  async add(entry: NewDeadLetter): Promise<DeadLetter> {
    const [added] = await this.addBatch([entry]);
    return added as DeadLetter;
  }

  async addBatch(entries: readonly NewDeadLetter[]): Promise<DeadLetter[]> {
    this.#db.assertOpen();
    if (entries.length === 0) return [];
    for (const entry of entries) assertStorableIdentity('dead-letter', entry);
    const t = this.#t;
    return this.#db.transaction(async (client) => {
      const now = this.#clock();
      await lockKeys(
        client,
        t,
        entries.map((e) => activeKey(e.group, e.source, e.messageId)),
      );
      const { rows } = await client.query<FullRow>(
        `SELECT d.* FROM ${t} d JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(grp, source, message_id)
           ON d.grp = k.grp AND d.source = k.source AND d.message_id = k.message_id WHERE d.status <> 'replayed'`,
        [entries.map((e) => e.group), entries.map((e) => e.source), entries.map((e) => e.messageId)],
      );
      const active = new Map(rows.map((row) => [activeKey(row.grp, row.source, row.message_id), row]));
      const inserted = new Map<string, FullRow>();
      const updated = new Map<string, FullRow>();
      const results = entries.map((entry) => {
        const key = activeKey(entry.group, entry.source, entry.messageId);
        const existing = active.get(key);
        if (existing !== undefined) {
          const attempts = JSON.stringify(mergeAttempts(JSON.parse(existing.attempts) as DeadLetterAttempt[], entry.attempts));
          const next = { ...existing, attempts };
          active.set(key, next);
          (inserted.has(next.id) ? inserted : updated).set(next.id, next);
          return fromRow(next, now);
        }
        const row = newRow(entry, now);
        active.set(key, row);
        inserted.set(row.id, row);
        return fromRow(row, now);
      });
      if (inserted.size > 0) {
        const list = [...inserted.values()];
        await client.query(
          `INSERT INTO ${t} (id, message_id, source, topic, grp, type, msg_key, reason, detail, attempts, headers, body, size, dead_lettered_at, status)
           SELECT u.*, 'pending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
             $9::text[], $10::text[], $11::text[], $12::bytea[], $13::int[], $14::bigint[]) AS u`,
          [
            list.map((r) => r.id),
            list.map((r) => r.message_id),
            list.map((r) => r.source),
            list.map((r) => r.topic),
            list.map((r) => r.grp),
            list.map((r) => r.type),
            list.map((r) => r.msg_key),
            list.map((r) => r.reason),
            list.map((r) => r.detail),
            list.map((r) => r.attempts),
            list.map((r) => r.headers),
            list.map((r) => r.body),
            list.map((r) => r.size),
            list.map((r) => r.dead_lettered_at),
          ],
        );
      }
      if (updated.size > 0) {
        const list = [...updated.values()];
        await client.query(
          `UPDATE ${t} d SET attempts = u.attempts FROM unnest($1::text[], $2::text[]) AS u(id, attempts) WHERE d.id = u.id`,
          [list.map((r) => r.id), list.map((r) => r.attempts)],
        );
      }
      return results;
    });
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    const { rows } = await this.#db.query<FullRow>(`SELECT * FROM ${this.#t} WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0], this.#clock());
  }

  async list(options: DeadLetterListOptions = {}): Promise<ListPage<DeadLetterSummary>> {
    this.#db.assertOpen();
    const limit = listPageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeListCursor(options.cursor, 2);
    const now = this.#clock();
    const { where, params } = filterSql(options, now);
    if (after !== undefined) {
      params.push(...after);
      where.push(`(dead_lettered_at, id) > ($${params.length - 1}::bigint, $${params.length}::text)`);
    }
    params.push(limit + 1);
    const sql = `SELECT ${SUMMARY_COLUMNS} FROM ${this.#t}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY dead_lettered_at, id LIMIT $${params.length}`;
    const { rows } = await this.#db.query<SummaryRow>(sql, params);
    const items = rows.slice(0, limit).map((row) => summaryFromRow(row, now));
    const last = items.at(-1);
    return rows.length > limit && last !== undefined ? { items, nextCursor: encodeListCursor([last.deadLetteredAt, last.id]) } : { items };
  }

  async take(options: DeadLetterTakeOptions): Promise<DeadLetter[]> {
    this.#db.assertOpen();
    const now = this.#clock();
    const { where, params } = filterSql({ ...options, status: 'pending' }, now);
    if (options.ids !== undefined) {
      params.push(options.ids);
      where.push(`id = ANY($${params.length}::text[])`);
    }
    params.push(listPageLimit(options.limit), options.owner, now + options.leaseMs);
    const n = params.length;
    const { rows } = await this.#db.query<FullRow>(
      `UPDATE ${this.#t} SET status = 'replaying', replay_owner = $${n - 1}, replay_lease_until = $${n}
       WHERE id IN (SELECT id FROM ${this.#t} WHERE ${where.join(' AND ')} ORDER BY dead_lettered_at, id LIMIT $${n - 2} FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      params,
    );
    return rows.map((row) => fromRow(row, now)).sort(byOrder);
  }

  async markReplayed(ids: readonly string[], owner: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      `UPDATE ${this.#t} SET status = 'replayed', replayed_at = $1, replay_count = replay_count + 1, replay_owner = NULL, replay_lease_until = NULL
       WHERE id = ANY($2::text[]) AND status = 'replaying' AND replay_owner = $3`,
      [this.#clock(), ids, owner],
    );
    return rowCount ?? 0;
  }

  async release(ids: readonly string[], owner: string): Promise<number> {
    const { rowCount } = await this.#db.query(
      `UPDATE ${this.#t} SET status = 'pending', replay_owner = NULL, replay_lease_until = NULL
       WHERE id = ANY($1::text[]) AND status = 'replaying' AND replay_owner = $2`,
      [ids, owner],
    );
    return rowCount ?? 0;
  }

  async remove(ids: readonly string[]): Promise<number> {
    const { rowCount } = await this.#db.query(`DELETE FROM ${this.#t} WHERE id = ANY($1::text[])`, [ids]);
    return rowCount ?? 0;
  }

  async purge(olderThan: number, options: { readonly onlyReplayed?: boolean } = {}): Promise<number> {
    const { rowCount } = await this.#db.query(
      `DELETE FROM ${this.#t} WHERE dead_lettered_at < $1${options.onlyReplayed === true ? ` AND status = 'replayed'` : ''}`,
      [olderThan],
    );
    return rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

function activeKey(group: string, source: string, messageId: string): string {
  return JSON.stringify([group, source, messageId]);
}

function newRow(entry: NewDeadLetter, now: number): FullRow {
  return {
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
    body: Buffer.from(entry.body),
    size: entry.body.byteLength,
    dead_lettered_at: String(entry.deadLetteredAt ?? now),
    status: 'pending',
    replay_count: 0,
    replayed_at: null,
    replay_owner: null,
    replay_lease_until: null,
  };
}

function filterSql(filter: DeadLetterFilter, now: number): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: (n: number) => string, value: unknown) => {
    params.push(value);
    where.push(clause(params.length));
  };
  if (filter.topic !== undefined) add((n) => `topic = $${n}`, filter.topic);
  if (filter.group !== undefined) add((n) => `grp = $${n}`, filter.group);
  if (filter.type !== undefined) add((n) => `type = $${n}`, filter.type);
  if (filter.reason !== undefined) add((n) => `reason = $${n}`, filter.reason);
  if (filter.messageId !== undefined) add((n) => `message_id = $${n}`, filter.messageId);
  if (filter.source !== undefined) add((n) => `source = $${n}`, filter.source);
  if (filter.from !== undefined) add((n) => `dead_lettered_at >= $${n}`, filter.from);
  if (filter.to !== undefined) add((n) => `dead_lettered_at < $${n}`, filter.to);
  switch (filter.status) {
    case undefined:
      break;
    case 'pending':
      add((n) => `(status = 'pending' OR (status = 'replaying' AND replay_lease_until <= $${n}))`, now);
      break;
    case 'replaying':
      add((n) => `(status = 'replaying' AND replay_lease_until > $${n})`, now);
      break;
    case 'replayed':
      where.push(`status = 'replayed'`);
      break;
  }
  return { where, params };
}

function byOrder(a: DeadLetterSummary, b: DeadLetterSummary): number {
  if (a.deadLetteredAt !== b.deadLetteredAt) return a.deadLetteredAt - b.deadLetteredAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function summaryFromRow(row: SummaryRow, now: number): DeadLetterSummary {
  const leaseUntil = optionalNumber(row.replay_lease_until);
  const leaseLive = row.status === 'replaying' && (leaseUntil ?? 0) > now;
  const status: DeadLetterStatus = row.status === 'replaying' && !leaseLive ? 'pending' : row.status;
  const replayedAt = optionalNumber(row.replayed_at);
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
    deadLetteredAt: Number(row.dead_lettered_at),
    status,
    replayCount: row.replay_count,
    ...(replayedAt === undefined ? {} : { replayedAt }),
    ...(leaseLive && row.replay_owner !== null ? { replayOwner: row.replay_owner } : {}),
    ...(leaseLive && leaseUntil !== undefined ? { replayLeaseUntil: leaseUntil } : {}),
    size: row.size,
  };
}

function fromRow(row: FullRow, now: number): DeadLetter {
  return { ...summaryFromRow(row, now), headers: JSON.parse(row.headers) as Headers, body: new Uint8Array(row.body) };
}

export function createPostgresDeadLetterStore(options: PostgresDeadLetterStoreOptions): PostgresDeadLetterStore {
  return new PostgresDeadLetterStore(options);
}
