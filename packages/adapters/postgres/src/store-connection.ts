import { createHash } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';
import { storeRefused } from '@switchboard/core/kit';
import pg from 'pg';

/** Connection options shared by the PostgreSQL receipt, dead-letter and outbox stores. */
export interface PostgresStoreOptions {
  /** e.g. `postgres://user@host:5432/db`. Ignored when `pool` is given. */
  readonly connectionString?: string;
  /** An existing pool; the store does not end it on `close()`. */
  readonly pool?: pg.Pool;
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Deadlock and serialisation failures: the transaction was rolled back and can simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const MAX_TRIES = 5;

/**
 * SQLSTATE classes of errors about the values of the statement, which the same statement meets
 * again on every try: 22 data exception (22001 value too long, 22021 invalid byte sequence such as
 * a NUL in text, 22P02 invalid text representation, 22003 out of range), 23 integrity constraint
 * (23502 not null, 23505 unique, 23514 check), 54 program limit exceeded (54000 index row size).
 */
const REFUSED_CLASSES = new Set(['22', '23', '54']);

/**
 * `SB_STORE_REFUSED` for an error about the statement's values (see `REFUSED_CLASSES`), else
 * `SB_STORE_UNAVAILABLE`: connection failures, timeouts, shutdowns, lack of resources, and errors
 * of the store as a whole (a missing table, a privilege) — those last are not the message's fault,
 * so messages wait for the operator instead of being dead-lettered. Switchboard's own errors pass.
 */
export function postgresStoreError(kind: string, error: unknown): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.length === 5 && REFUSED_CLASSES.has(code.slice(0, 2))) {
    return storeRefused(`the PostgreSQL ${kind} store refused a value (SQLSTATE ${code})`, { cause: error });
  }
  return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `the PostgreSQL ${kind} store failed`, cause: error });
}

/**
 * How a store recognises a table of an earlier layout: an SQL query with `$1` = the table name that
 * answers one row `{ ok: boolean }` (true also when the table does not exist yet).
 */
export interface TableLayoutCheck {
  readonly sql: string;
  /** What is expected, for the error message. */
  readonly expected: string;
}

/**
 * The pool, lazily created schema and error mapping behind one PostgreSQL store. Failures of the
 * server or the connection surface as `SB_STORE_UNAVAILABLE` (retryable; a failed transaction was
 * rolled back, so nothing is half-written), values the server refuses as `SB_STORE_REFUSED` (not
 * retryable; see `postgresStoreError`); calls after `close()` fail with `SB_CLOSED`.
 */
export class PostgresStoreConnection {
  readonly pool: pg.Pool;
  readonly table: string;
  readonly #ownsPool: boolean;
  readonly #kind: string;
  readonly #schema: string;
  readonly #layout: TableLayoutCheck | undefined;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(kind: string, options: PostgresStoreOptions, table: string, schema: (table: string) => string, layout?: TableLayoutCheck) {
    if (!/^[a-z_][a-z0-9_]{0,50}$/.test(table)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `invalid ${kind} table name "${table}" (lower-case letters, digits, _)` });
    }
    if (options.pool !== undefined) {
      this.pool = options.pool;
      this.#ownsPool = false;
    } else if (options.connectionString !== undefined) {
      this.pool = new pg.Pool({ connectionString: options.connectionString });
      this.#ownsPool = true;
      this.pool.on('error', () => {
        // An idle client lost its connection; the pool replaces it and the next query reports any outage.
      });
    } else {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `the PostgreSQL ${kind} store needs \`connectionString\` or \`pool\`` });
    }
    this.#kind = kind;
    this.table = table;
    this.#schema = schema(table);
    this.#layout = layout;
  }

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: `the PostgreSQL ${this.#kind} store was closed` });
  }

  /** The registry error for a failure of this store (see `postgresStoreError`). */
  failure(error: unknown): SwitchboardError {
    return postgresStoreError(this.#kind, error);
  }

  /**
   * Creates the schema once; concurrent starts (other processes too) serialise on an advisory lock.
   * A table of an earlier layout fails with `SB_CONFIG_INVALID` (there is no migration).
   */
  ensureSchema(): Promise<void> {
    this.#ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`switchboard:schema:${this.table}`]);
        if (this.#layout !== undefined) {
          const { rows } = await client.query<{ ok: boolean }>(this.#layout.sql, [this.table]);
          if (rows[0]?.ok !== true) {
            throw new SwitchboardError('SB_CONFIG_INVALID', {
              detail: `table ${this.table} has the layout of an earlier version; this version expects ${this.#layout.expected} and does not migrate: drop the table or use another table name`,
            });
          }
        }
        await client.query(this.#schema);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      // A schema that cannot be created is the store's problem, never a message's: unavailable.
      if (error instanceof SwitchboardError) throw error;
      throw new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `the PostgreSQL ${this.#kind} store failed`, cause: error });
    });
    return this.#ready;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: readonly unknown[] = []): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    try {
      await this.ensureSchema();
      return await this.pool.query<R>(text, values as unknown[]);
    } catch (error) {
      throw this.failure(error);
    }
  }

  /** Runs `work` in one transaction, again on a deadlock or serialisation failure. */
  async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        await this.ensureSchema();
        client = await this.pool.connect();
      } catch (error) {
        throw this.failure(error);
      }
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (error) {
        const rolledBack = await client.query('ROLLBACK').then(
          () => true,
          () => false,
        );
        client.release(!rolledBack);
        const code = (error as { code?: unknown }).code;
        if (rolledBack && typeof code === 'string' && RETRYABLE.has(code) && attempt < MAX_TRIES) continue;
        throw this.failure(error);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownsPool) await this.pool.end();
  }
}

/**
 * Takes transaction-scoped advisory locks on `keys` in a fixed order (so two batches never
 * deadlock on each other), in one round trip. Keys are hashed with the table name to 64 bits.
 */
export async function lockKeys(client: Queryable, table: string, keys: Iterable<string>): Promise<void> {
  const ids = [...new Set([...keys].map((key) => advisoryKey(table, key)))].sort();
  if (ids.length === 0) return;
  // Volatile functions in the select list run after ORDER BY, so the locks are taken in this order.
  await client.query('SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS u(k) ORDER BY k', [ids]);
}

function advisoryKey(table: string, key: string): string {
  return createHash('sha256').update(table).update('\u0000').update(key).digest().readBigInt64BE(0).toString();
}

/** A BIGINT column (pg returns it as a string) as a number, or `undefined` for NULL. */
export function optionalNumber(value: string | number | null): number | undefined {
  return value === null ? undefined : Number(value);
}
