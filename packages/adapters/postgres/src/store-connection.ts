import { createHash } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';
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
 * The pool, lazily created schema and error mapping behind one PostgreSQL store. Every failure of
 * the server or the connection surfaces as `SB_STORE_UNAVAILABLE` (retryable; a failed transaction
 * was rolled back, so nothing is half-written); calls after `close()` fail with `SB_CLOSED`.
 */
export class PostgresStoreConnection {
  readonly pool: pg.Pool;
  readonly table: string;
  readonly #ownsPool: boolean;
  readonly #kind: string;
  readonly #schema: string;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(kind: string, options: PostgresStoreOptions, table: string, schema: (table: string) => string) {
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
  }

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: `the PostgreSQL ${this.#kind} store was closed` });
  }

  unavailable(error: unknown): SwitchboardError {
    if (error instanceof SwitchboardError) return error;
    return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `the PostgreSQL ${this.#kind} store failed`, cause: error });
  }

  /** Creates the schema once; concurrent starts (other processes too) serialise on an advisory lock. */
  ensureSchema(): Promise<void> {
    this.#ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`switchboard:schema:${this.table}`]);
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
      throw this.unavailable(error);
    });
    return this.#ready;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: readonly unknown[] = []): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    try {
      await this.ensureSchema();
      return await this.pool.query<R>(text, values as unknown[]);
    } catch (error) {
      throw this.unavailable(error);
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
        throw this.unavailable(error);
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
        throw this.unavailable(error);
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
