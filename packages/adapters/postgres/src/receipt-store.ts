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
  applyReceiptClaims,
  applyReceiptUpdates,
  assertStorableIdentity,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  reopenReceipt,
} from '@switchboard/core/kit';
import {
  lockKeys,
  optionalNumber,
  PostgresStoreConnection,
  type PostgresStoreOptions,
  type Queryable,
  type TableLayoutCheck,
} from './store-connection.js';

export interface PostgresReceiptStoreOptions extends PostgresStoreOptions {
  /** Table name (lower-case letters, digits, `_`). Default `switchboard_receipts`. */
  readonly table?: string;
}

interface ReceiptRow {
  message_id: string;
  source: string;
  grp: string;
  state: ReceiptState;
  type: string | null;
  topic: string | null;
  sender?: string | null;
  attempts: number;
  received_at: string;
  updated_at: string;
  processed_at: string | null;
  error: string | null;
  result: string | null;
  lease_owner: string | null;
  lease_until: string | null;
}

const PURGE_CHUNK = 1000;

function schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  message_id TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  grp TEXT COLLATE "C" NOT NULL,
  state TEXT NOT NULL,
  type TEXT,
  topic TEXT,
  attempts INTEGER NOT NULL,
  received_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  processed_at BIGINT,
  error TEXT,
  result TEXT,
  lease_owner TEXT,
  lease_until BIGINT,
  sender TEXT,
  PRIMARY KEY (message_id, source, grp)
);
ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS sender TEXT;
CREATE INDEX IF NOT EXISTS ${t}_received ON ${t} (received_at, grp, source, message_id);
CREATE INDEX IF NOT EXISTS ${t}_grp_received ON ${t} (grp, received_at, source, message_id);
CREATE INDEX IF NOT EXISTS ${t}_updated ON ${t} (updated_at);`;
}

/** A table of an earlier layout has another primary key (it was (message_id, grp)). */
const LAYOUT: TableLayoutCheck = {
  sql: `SELECT to_regclass($1) IS NULL OR coalesce((
      SELECT string_agg(a.attname, ',' ORDER BY k.n)
        FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = to_regclass($1) AND i.indisprimary), '') = 'message_id,source,grp' AS ok`,
  expected: 'the primary key (message_id, source, grp)',
};

/**
 * `ReceiptStore` on PostgreSQL. Every batch (`record`, `claimBatch`, `reopen`) is one transaction:
 * advisory locks on the batch's (MessageId, source, group) keys in a fixed order, one read of the current
 * records, the shared rules of `@switchboard/core` (`mergeReceipt`, `decideClaim`, `reopenReceipt`)
 * applied in order, and one multi-row upsert — five round trips whatever the batch size. The locks
 * make concurrent claims of the same message (from any process) serialise, so exactly one wins.
 *
 * Schema (`<table>`, created on first use under an advisory lock): primary key
 * (message_id, source, grp) with byte-order (`"C"`) collation, which also serves
 * `getAll(messageId, source?)`; indexes on (received_at, grp, source, message_id) and
 * (grp, received_at, source, message_id) for `list`, (updated_at) for `purge`. Times are BIGINT
 * epoch ms from the store's clock; `error` is the problem document as JSON text. Keys over the
 * identity limits are refused before the transaction; values the server refuses (a NUL byte, an
 * index row over its size limit) fail the batch with `SB_STORE_REFUSED`.
 */
export class PostgresReceiptStore implements ReceiptStore {
  readonly #db: PostgresStoreConnection;
  readonly #clock: () => number;
  readonly #t: string;

  constructor(options: PostgresReceiptStoreOptions) {
    this.#db = new PostgresStoreConnection('receipt', options, options.table ?? 'switchboard_receipts', schema, LAYOUT);
    this.#clock = options.clock ?? Date.now;
    this.#t = this.#db.table;
  }

  async record(updates: readonly ReceiptUpdate[]): Promise<RecordOutcome[]> {
    if (updates.length === 0) return this.#none([]);
    assertKeys(updates);
    return this.#batch(updates, (records, now) => applyReceiptUpdates(records, updates, now, keyOf));
  }

  async claim(request: ReceiptClaim): Promise<ReceiptClaimResult> {
    const [result] = await this.claimBatch([request]);
    return result as ReceiptClaimResult;
  }

  async claimBatch(requests: readonly ReceiptClaim[]): Promise<ReceiptClaimResult[]> {
    if (requests.length === 0) return this.#none([]);
    assertKeys(requests);
    return this.#batch(requests, (records, now) => applyReceiptClaims(records, requests, now, keyOf));
  }

  /** `record(updates)` then `claimBatch(requests)` in one transaction: one lock, one read, one write, one commit. */
  async recordAndClaim(
    updates: readonly ReceiptUpdate[],
    requests: readonly ReceiptClaim[],
  ): Promise<{ outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }> {
    if (updates.length === 0 && requests.length === 0) return this.#none({ outcomes: [], claims: [] });
    assertKeys(updates);
    assertKeys(requests);
    return this.#batch([...updates, ...requests], (records, now) => ({
      outcomes: applyReceiptUpdates(records, updates, now, keyOf),
      claims: applyReceiptClaims(records, requests, now, keyOf),
    }));
  }

  async extendLease(key: ReceiptKey, owner: string, leaseMs: number): Promise<boolean> {
    const now = this.#clock();
    const { rowCount } = await this.#db.query(
      `UPDATE ${this.#t} SET lease_until = $1, updated_at = GREATEST($2, updated_at)
       WHERE message_id = $3 AND source = $4 AND grp = $5 AND state = 'processing' AND lease_owner = $6`,
      [now + leaseMs, now, key.messageId, key.source, key.group, owner],
    );
    return rowCount === 1;
  }

  async reopen(keys: readonly ReceiptKey[]): Promise<number> {
    if (keys.length === 0) return this.#none(0);
    return this.#batch(keys, (records, now) => {
      let count = 0;
      for (const key of keys) {
        const current = records.get(keyOf(key));
        const next = current === undefined ? undefined : reopenReceipt(current, now);
        if (next !== undefined) {
          records.set(keyOf(key), next);
          count++;
        }
      }
      return count;
    });
  }

  async get(key: ReceiptKey): Promise<Receipt | undefined> {
    const { rows } = await this.#db.query<ReceiptRow>(`SELECT * FROM ${this.#t} WHERE message_id = $1 AND source = $2 AND grp = $3`, [
      key.messageId,
      key.source,
      key.group,
    ]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async getAll(messageId: string, source?: string): Promise<Receipt[]> {
    const { rows } =
      source === undefined
        ? await this.#db.query<ReceiptRow>(`SELECT * FROM ${this.#t} WHERE message_id = $1 ORDER BY source, grp`, [messageId])
        : await this.#db.query<ReceiptRow>(`SELECT * FROM ${this.#t} WHERE message_id = $1 AND source = $2 ORDER BY grp`, [
            messageId,
            source,
          ]);
    return rows.map(fromRow);
  }

  async list(filter: ReceiptListFilter = {}): Promise<ListPage<Receipt>> {
    this.#db.assertOpen();
    const limit = listPageLimit(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeListCursor(filter.cursor, 4);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: (n: number) => string, value: unknown) => {
      params.push(value);
      where.push(clause(params.length));
    };
    if (filter.group !== undefined) add((n) => `grp = $${n}`, filter.group);
    if (filter.source !== undefined) add((n) => `source = $${n}`, filter.source);
    if (filter.state !== undefined) add((n) => `state = $${n}`, filter.state);
    if (filter.type !== undefined) add((n) => `type = $${n}`, filter.type);
    if (filter.topic !== undefined) add((n) => `topic = $${n}`, filter.topic);
    if (filter.receivedFrom !== undefined) add((n) => `received_at >= $${n}`, filter.receivedFrom);
    if (filter.receivedTo !== undefined) add((n) => `received_at < $${n}`, filter.receivedTo);
    if (after !== undefined) {
      params.push(...after);
      const n = params.length;
      where.push(`(received_at, grp, source, message_id) > ($${n - 3}::bigint, $${n - 2}::text, $${n - 1}::text, $${n}::text)`);
    }
    params.push(limit + 1);
    const sql = `SELECT * FROM ${this.#t}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}
      ORDER BY received_at, grp, source, message_id LIMIT $${params.length}`;
    const { rows } = await this.#db.query<ReceiptRow>(sql, params);
    const items = rows.slice(0, limit).map(fromRow);
    const last = items.at(-1);
    return rows.length > limit && last !== undefined
      ? { items, nextCursor: encodeListCursor([last.receivedAt, last.group, last.source, last.messageId]) }
      : { items };
  }

  async purge(olderThan: number, options: ReceiptPurgeOptions = {}): Promise<number> {
    const states = options.states;
    if (states !== undefined && states.length === 0) return this.#none(0);
    const stateClause = states === undefined ? '' : ' AND state = ANY($2::text[])';
    const sql = `DELETE FROM ${this.#t} WHERE (message_id, source, grp) IN (
      SELECT message_id, source, grp FROM ${this.#t} WHERE updated_at < $1${stateClause} LIMIT ${PURGE_CHUNK})`;
    let total = 0;
    // Deletes in chunks, one short statement each, so no long lock is held.
    for (;;) {
      const { rowCount } = await this.#db.query(sql, states === undefined ? [olderThan] : [olderThan, states]);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < PURGE_CHUNK) return total;
    }
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  /** The answer for an empty request (still `SB_CLOSED` after close). */
  async #none<T>(value: T): Promise<T> {
    this.#db.assertOpen();
    return value;
  }

  /**
   * One transaction: lock the keys, read their records, let `apply` compute the new records in
   * order (it sets changed ones in the map), then write every changed record once.
   */
  #batch<T>(keys: readonly ReceiptKey[], apply: (records: Map<string, Receipt>, now: number) => T): Promise<T> {
    return this.#db.transaction(async (client) => {
      const distinct = new Map(keys.map((key) => [keyOf(key), key]));
      await lockKeys(client, this.#t, distinct.keys());
      const before = await this.#read(client, [...distinct.values()]);
      const records = new Map(before);
      const result = apply(records, this.#clock());
      const changed = [...records.entries()].filter(([key, receipt]) => before.get(key) !== receipt).map(([, receipt]) => receipt);
      if (changed.length > 0) await this.#write(client, changed);
      return result;
    });
  }

  async #read(client: Queryable, keys: readonly ReceiptKey[]): Promise<Map<string, Receipt>> {
    const { rows } = await client.query<ReceiptRow>(
      `SELECT t.* FROM ${this.#t} t JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(message_id, source, grp)
         ON t.message_id = k.message_id AND t.source = k.source AND t.grp = k.grp`,
      [keys.map((k) => k.messageId), keys.map((k) => k.source), keys.map((k) => k.group)],
    );
    return new Map(rows.map((row) => [keyOf({ messageId: row.message_id, source: row.source, group: row.grp }), fromRow(row)]));
  }

  async #write(client: Queryable, receipts: readonly Receipt[]): Promise<void> {
    const column = <V>(pick: (r: Receipt) => V) => receipts.map(pick);
    await client.query(
      `INSERT INTO ${this.#t} (message_id, source, grp, state, type, topic, attempts, received_at, updated_at, processed_at, error, result, lease_owner, lease_until, sender)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::bigint[],
         $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[])
       ON CONFLICT (message_id, source, grp) DO UPDATE SET
         state = excluded.state, type = excluded.type, topic = excluded.topic, attempts = excluded.attempts,
         updated_at = excluded.updated_at, processed_at = excluded.processed_at, error = excluded.error, result = excluded.result,
         lease_owner = excluded.lease_owner, lease_until = excluded.lease_until`,
      [
        column((r) => r.messageId),
        column((r) => r.source),
        column((r) => r.group),
        column((r) => r.state),
        column((r) => r.type ?? null),
        column((r) => r.topic ?? null),
        column((r) => r.attempts),
        column((r) => r.receivedAt),
        column((r) => r.updatedAt),
        column((r) => r.processedAt ?? null),
        column((r) => (r.error === undefined ? null : JSON.stringify(r.error))),
        column((r) => r.result ?? null),
        column((r) => r.leaseOwner ?? null),
        column((r) => r.leaseUntil ?? null),
        column((r) => r.sender ?? null),
      ],
    );
  }
}

function keyOf(key: ReceiptKey): string {
  return JSON.stringify([key.messageId, key.source, key.group]);
}

/** Refuses the whole batch, before its transaction, when one key is over the identity limits. */
function assertKeys(keys: readonly ReceiptKey[]): void {
  for (let i = 0; i < keys.length; i++) assertStorableIdentity('receipt', keys[i] as ReceiptKey);
}

function fromRow(row: ReceiptRow): Receipt {
  const processedAt = optionalNumber(row.processed_at);
  const leaseUntil = optionalNumber(row.lease_until);
  return {
    group: row.grp,
    source: row.source,
    messageId: row.message_id,
    state: row.state,
    ...(row.type === null ? {} : { type: row.type }),
    ...(row.topic === null ? {} : { topic: row.topic }),
    attempts: row.attempts,
    receivedAt: Number(row.received_at),
    updatedAt: Number(row.updated_at),
    ...(processedAt === undefined ? {} : { processedAt }),
    ...(row.error === null ? {} : { error: JSON.parse(row.error) as ProblemDetails }),
    ...(row.result === null ? {} : { result: row.result }),
    ...(row.lease_owner === null ? {} : { leaseOwner: row.lease_owner }),
    ...(leaseUntil === undefined ? {} : { leaseUntil }),
    ...(row.sender === null || row.sender === undefined ? {} : { sender: row.sender }),
  };
}

export function createPostgresReceiptStore(options: PostgresReceiptStoreOptions): PostgresReceiptStore {
  return new PostgresReceiptStore(options);
}
