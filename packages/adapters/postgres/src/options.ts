import { SwitchboardError } from '@switchboard/core';
import { positiveInteger } from '@switchboard/core/kit';
import type { Pool, PoolConfig } from 'pg';
import { isIdentifier } from './broker-sql.js';

export interface PostgresBrokerOptions {
  /** Connection URL, e.g. `postgres://user@host:5432/db`. Ignored when `pool` is given. */
  readonly url?: string;
  /** Extra `pg.Pool` settings for the pool the broker creates itself. */
  readonly poolConfig?: PoolConfig;
  /**
   * An existing pool. The broker holds one of its connections for LISTEN while it has
   * subscriptions, and does not end the pool on `close()`: its owner does.
   */
  readonly pool?: Pool;
  /** Schema of the broker's tables, created if missing. Default `public`. */
  readonly schema?: string;
  /** Prefix of the broker's table names. Default `switchboard_`. */
  readonly prefix?: string;
  /** Largest body accepted by `publish`, in bytes. Default 1 MiB, at most 256 MiB. */
  readonly maxMessageBytes?: number;
  /** Fallback poll of a consumer that got no notification (delayed nacks, expired leases). Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** How long `close()` waits for running handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /**
   * INSERT statements of coalesced publishes in flight at once. Publishes of one event-loop turn,
   * and those that arrive while these are busy, share one statement (one commit). Default 4.
   */
  readonly publishConcurrency?: number;
  /** Receives errors of the background loops (claims, LISTEN); they are retried, never thrown. */
  readonly onError?: (error: SwitchboardError) => void;
}

export interface ResolvedPostgresBrokerOptions {
  readonly schema: string;
  readonly prefix: string;
  readonly maxMessageBytes: number;
  readonly pollIntervalMs: number;
  readonly drainTimeoutMs: number;
  readonly publishConcurrency: number;
}

const MIB = 1024 * 1024;

/** The options checked (`SB_CONFIG_INVALID`), with their defaults. */
export function resolvePostgresBrokerOptions(options: PostgresBrokerOptions): ResolvedPostgresBrokerOptions {
  const schema = options.schema ?? 'public';
  const prefix = options.prefix ?? 'switchboard_';
  if (!isIdentifier(schema) || !(isIdentifier(prefix) || prefix === '')) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: 'schema and prefix must be lower-case identifiers ([a-z_][a-z0-9_]*, at most 41 characters)',
    });
  }
  return {
    schema,
    prefix,
    maxMessageBytes: positiveInteger(options.maxMessageBytes, 'maxMessageBytes', MIB, 256 * MIB),
    pollIntervalMs: positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 500),
    drainTimeoutMs: positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000),
    publishConcurrency: positiveInteger(options.publishConcurrency, 'publishConcurrency', 4),
  };
}

/** `SB_CONFIG_INVALID` unless a topic or group name is 1 to 200 characters without NUL. */
export function checkName(kind: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200 || value.includes('\0')) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${kind} must be 1 to 200 characters` });
  }
}
