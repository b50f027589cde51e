import { SwitchboardError } from '@switchboard/core';
import { positiveInteger } from '@switchboard/core/kit';
import type { OpenDatabaseOptions } from './database.js';

export interface SqliteBrokerOptions extends OpenDatabaseOptions {
  /** The database file. Every process that opens the same file shares its topics and groups. */
  readonly path: string;
  /** Prefix of the broker's tables (letters, digits, `_`). Default `sb_broker_`. */
  readonly prefix?: string;
  /** Longest pause between two looks for work when idle, in ms (polling backs off from 1 ms to this). Default 50. */
  readonly pollIntervalMs?: number;
  /** Most rows one claim takes for one subscription. Default 256. */
  readonly claimBatch?: number;
  /** Largest body accepted, in bytes. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** How long `close` waits for running handlers before releasing their deliveries, in ms. Default 10 000. */
  readonly drainTimeoutMs?: number;
  /** Watch the WAL file so commits of other processes wake consumers at once. Default true. */
  readonly watchWal?: boolean;
  /** Wake consumers of other brokers on the same file in this process right after a publish. Default true. */
  readonly notifyInProcess?: boolean;
}

export interface ResolvedSqliteBrokerOptions {
  readonly path: string;
  readonly prefix: string;
  readonly pollIntervalMs: number;
  readonly claimBatch: number;
  readonly maxMessageBytes: number;
  readonly drainTimeoutMs: number;
  readonly watchWal: boolean;
  readonly notifyInProcess: boolean;
}

/** The options checked (`SB_CONFIG_INVALID`), with their defaults. */
export function resolveSqliteBrokerOptions(options: SqliteBrokerOptions): ResolvedSqliteBrokerOptions {
  if (typeof options.path !== 'string' || options.path === '') {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the SQLite broker needs `path`, the database file' });
  }
  const prefix = options.prefix ?? 'sb_broker_';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(prefix)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `prefix "${prefix}" must be letters, digits and _ (at most 41)` });
  }
  return {
    path: options.path,
    prefix,
    pollIntervalMs: positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 50),
    claimBatch: positiveInteger(options.claimBatch, 'claimBatch', 256),
    maxMessageBytes: positiveInteger(options.maxMessageBytes, 'maxMessageBytes', 16 * 1024 * 1024),
    drainTimeoutMs: positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000),
    watchWal: options.watchWal ?? true,
    notifyInProcess: options.notifyInProcess ?? true,
  };
}
