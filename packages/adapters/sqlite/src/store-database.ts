import { SwitchboardError } from '@switchboard/core';
import { storeRefused } from '@switchboard/core/kit';
import type Database from 'better-sqlite3';
import { type OpenDatabaseOptions, openDatabase } from './database.js';

export interface StoreDatabaseOptions extends OpenDatabaseOptions {
  /**
   * An open database to use (not closed by the store). Pass the application's own handle to make
   * store writes join the application's transactions.
   */
  readonly database?: Database.Database;
  /** A file to open (WAL, with `synchronous` and `busyTimeoutMs`) when no `database` is given. */
  readonly path?: string;
  /** Prefix of the store's tables. Letters, digits and `_`. Default `sb_`. */
  readonly tablePrefix?: string;
}

/**
 * Adopts the caller's database, or opens `path` with `openDatabase` (WAL, busy timeout,
 * `synchronous`), which several processes can share.
 */
export function openStoreDatabase(options: StoreDatabaseOptions): { db: Database.Database; owns: boolean } {
  if (options.database !== undefined) return { db: options.database, owns: false };
  if (options.path === undefined) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'a SQLite store needs `database` or `path`' });
  return { db: openDatabase(options.path, options), owns: true };
}

/** `<prefix><name>`, with the prefix checked so it can be spliced into SQL. */
export function tableName(prefix: string | undefined, name: string): string {
  const value = prefix ?? 'sb_';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `table prefix "${value}" must be letters, digits and _` });
  }
  return `${value}${name}`;
}

const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|PROTOCOL|READONLY)/;
/** Values the engine refuses for good: a constraint (CHECK, NOT NULL, UNIQUE, a trigger's RAISE), a string or blob over the length limit, a type mismatch. */
const REFUSED = /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH)/;

/**
 * Runs a store call, turning engine failures into registry errors: lock timeouts and I/O errors
 * become `SB_STORE_UNAVAILABLE` (retryable; the transaction was rolled back, nothing half-written),
 * values the engine refuses become `SB_STORE_REFUSED` (retrying cannot help; the transaction was
 * rolled back), a closed handle becomes `SB_CLOSED`.
 */
export function runStoreCall<T>(store: string, call: () => T): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof SwitchboardError) throw error;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && UNAVAILABLE.test(code)) {
      throw new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `${store} store: ${code}`, cause: error });
    }
    if (typeof code === 'string' && REFUSED.test(code))
      throw storeRefused(`the SQLite ${store} store refused a value (${code})`, { cause: error });
    if (error instanceof TypeError && /not open/i.test(error.message)) {
      throw new SwitchboardError('SB_CLOSED', { detail: `${store} store closed`, cause: error });
    }
    throw error;
  }
}

/**
 * Fails with `SB_CONFIG_INVALID` when `table` exists with the primary key of an earlier layout
 * (the stores change their tables in place; there is no migration): `expected` lists the primary
 * key columns in order, or, for a table keyed by a surrogate id, the columns it must have.
 */
export function assertTableLayout(
  db: Database.Database,
  table: string,
  expected: { readonly primaryKey?: readonly string[]; readonly columns?: readonly string[] },
): void {
  const columns = db.prepare<[string], { name: string; pk: number }>('SELECT name, pk FROM pragma_table_info(?)').all(table);
  if (columns.length === 0) return;
  const primaryKey = columns
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
  const names = new Set(columns.map((c) => c.name));
  const keyMatches = expected.primaryKey === undefined || primaryKey.join(',') === expected.primaryKey.join(',');
  const columnsMatch = (expected.columns ?? []).every((name) => names.has(name));
  if (keyMatches && columnsMatch) return;
  throw new SwitchboardError('SB_CONFIG_INVALID', {
    detail: `table ${table} has the layout of an earlier version (primary key ${primaryKey.join(', ')}); this version keys it by (group, source, MessageId) and does not migrate: drop the table or use another tablePrefix`,
  });
}
