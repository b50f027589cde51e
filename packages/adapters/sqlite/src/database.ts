import { SwitchboardError } from '@switchboard/core';
import Database from 'better-sqlite3';

/**
 * `NORMAL` (the default in WAL mode): a process crash loses nothing committed, but a power loss or
 * OS crash can lose the last transactions before the next checkpoint (never corrupts the file).
 * `FULL`: every commit is fsynced, so a confirmed publish survives a power loss too; slower.
 */
export type SqliteSynchronous = 'NORMAL' | 'FULL';

export interface OpenDatabaseOptions {
  /** `synchronous` pragma. Default `NORMAL`. */
  readonly synchronous?: SqliteSynchronous;
  /** How long a write waits for another connection's lock before failing with `SQLITE_BUSY`, in ms. Default 5 000. */
  readonly busyTimeoutMs?: number;
  /** Upper bound of the WAL file kept after a checkpoint, in bytes. Default 64 MiB. */
  readonly walSizeLimitBytes?: number;
}

/**
 * Opens a SQLite file for use by several processes at once: WAL journal (readers never block the
 * writer), a busy timeout so writers queue instead of failing, and the chosen `synchronous` level.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Database.Database {
  const synchronous = options.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `synchronous must be NORMAL or FULL, got ${String(synchronous)}` });
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}` });
  }
  const walLimit = options.walSizeLimitBytes ?? 64 * 1024 * 1024;
  const db = new Database(path);
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (typeof mode !== 'string' || mode.toLowerCase() !== 'wal') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${path} cannot use the WAL journal (got ${String(mode)})` });
    }
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma(`journal_size_limit = ${Math.max(0, Math.trunc(walLimit))}`);
    db.pragma('temp_store = MEMORY');
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
