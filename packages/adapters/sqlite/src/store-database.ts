import { SwitchboardError } from '@switchboard/core';
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

/**
 * Runs a store call, turning engine failures into registry errors: lock timeouts and I/O errors
 * become `SB_STORE_UNAVAILABLE` (retryable; the transaction was rolled back, nothing half-written),
 * a closed handle becomes `SB_CLOSED`.
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
    if (error instanceof TypeError && /not open/i.test(error.message)) {
      throw new SwitchboardError('SB_CLOSED', { detail: `${store} store closed`, cause: error });
    }
    throw error;
  }
}
