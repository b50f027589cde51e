import { SwitchboardError } from '@switchboard/core';
import type { DroppedDelivery } from '@switchboard/core/kit';
import { positiveInteger } from '@switchboard/core/kit';
import type { Redis, RedisOptions } from 'ioredis';

const MIB = 1024 * 1024;
/** The largest bulk string Redis takes. */
export const REDIS_MAX_BULK = 512 * MIB;
const NAME = /^[^\s{}]{1,200}$/;
export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** What both Redis brokers take. */
export interface RedisBrokerOptions {
  /** Connection URL, e.g. `redis://127.0.0.1:6379`. Ignored when `client` is given. Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** Extra ioredis options for the connections the broker opens itself. */
  readonly redisOptions?: RedisOptions;
  /**
   * An existing connection for commands. The broker duplicates it for its own blocking reads or
   * subscriptions and does not close it on `close()`: its owner does.
   */
  readonly client?: Redis;
  /** Prefix of every key and channel the broker uses. Default `sb:`. */
  readonly prefix?: string;
  /** Largest body accepted by `publish`, in bytes. Default 1 MiB, at most 512 MiB (the Redis limit). */
  readonly maxMessageBytes?: number;
  /** How long closing waits for running handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Receives errors of connections and background loops; they are retried, never thrown. */
  readonly onError?: (error: SwitchboardError) => void;
}

export interface RedisStreamsBrokerOptions extends RedisBrokerOptions {
  /**
   * Retention by length: each XADD trims the stream to about this many entries (`MAXLEN ~`).
   * Entries are trimmed whether or not every group has read or acknowledged them. Default: no trimming.
   */
  readonly maxLen?: number;
  /** Retention by age: each XADD trims entries older than this (`MINID ~`). Same caveat as `maxLen`. */
  readonly maxAgeMs?: number;
  /**
   * Declare the broker persistent. Only true when the server runs `appendonly yes` with
   * `appendfsync always` and `maxmemory-policy noeviction`; the broker checks those settings
   * (`CONFIG GET`) before its first command and refuses to work with SB_CONFIG_INVALID when they
   * differ. Default false.
   */
  readonly persistent?: boolean;
  /** Longest a consumer waits in one blocking read, and the period of its delayed/reclaim checks. Default 200 ms. */
  readonly pollIntervalMs?: number;
  /** How often a consumer looks for deliveries left unsettled past `ackTimeoutMs`. Default `ackTimeoutMs / 2`, at most 5 000 ms. */
  readonly claimIntervalMs?: number;
}

export interface RedisPubSubBrokerOptions extends RedisBrokerOptions {
  /** How long a claim key lives when several members share a group. Default 60 000 ms. */
  readonly claimTtlMs?: number;
  /**
   * While a group is shared, how long a member that is not a delivery's preferred member waits
   * before claiming it too (the preferred one may be gone). Default 50 ms.
   */
  readonly fallbackClaimDelayMs?: number;
  /** While a group is shared, how often a member checks whether it is alone again. Default 1 000 ms. */
  readonly membershipIntervalMs?: number;
  /** Deliveries waiting for a free `maxInFlight` slot, per subscription, before new ones are dropped. Default 100 000. */
  readonly maxPending?: number;
  /** Told about every delivery dropped on this side (overflow, failed handler, close, malformed, failed claim). */
  readonly onDrop?: (drop: DroppedDelivery) => void;
}

export interface ResolvedRedisOptions {
  readonly url: string;
  readonly prefix: string;
  readonly maxMessageBytes: number;
  readonly drainTimeoutMs: number;
}

export interface ResolvedStreamsOptions extends ResolvedRedisOptions {
  /** The trim arguments of XADD (`MINID` ones are completed with the cut-off at each publish). */
  readonly trim: readonly (string | number)[];
  readonly maxAgeMs: number | undefined;
  readonly persistent: boolean;
  readonly pollIntervalMs: number;
  readonly claimIntervalMs: number | undefined;
}

export interface ResolvedPubSubOptions extends ResolvedRedisOptions {
  readonly claimTtlMs: number;
  readonly fallbackClaimDelayMs: number;
  readonly membershipIntervalMs: number;
  readonly maxPending: number;
}

function resolveCommon(options: RedisBrokerOptions): ResolvedRedisOptions {
  return {
    url: options.url ?? DEFAULT_URL,
    prefix: options.prefix ?? 'sb:',
    maxMessageBytes: positiveInteger(options.maxMessageBytes, 'maxMessageBytes', MIB, REDIS_MAX_BULK),
    drainTimeoutMs: positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000),
  };
}

/** The Streams broker's options checked (`SB_CONFIG_INVALID`), with their defaults. */
export function resolveStreamsOptions(options: RedisStreamsBrokerOptions): ResolvedStreamsOptions {
  if (options.maxLen !== undefined && options.maxAgeMs !== undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'maxLen and maxAgeMs cannot both be set: XADD trims by one strategy' });
  }
  const maxLen = options.maxLen === undefined ? undefined : positiveInteger(options.maxLen, 'maxLen', 1);
  const maxAgeMs = options.maxAgeMs === undefined ? undefined : positiveInteger(options.maxAgeMs, 'maxAgeMs', 1);
  return {
    ...resolveCommon(options),
    trim: maxLen !== undefined ? ['MAXLEN', '~', maxLen] : maxAgeMs !== undefined ? ['MINID', '~'] : [],
    maxAgeMs,
    persistent: options.persistent === true,
    pollIntervalMs: positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 200),
    claimIntervalMs: options.claimIntervalMs === undefined ? undefined : positiveInteger(options.claimIntervalMs, 'claimIntervalMs', 1),
  };
}

/** The pub/sub broker's options checked (`SB_CONFIG_INVALID`), with their defaults. */
export function resolvePubSubOptions(options: RedisPubSubBrokerOptions): ResolvedPubSubOptions {
  return {
    ...resolveCommon(options),
    claimTtlMs: positiveInteger(options.claimTtlMs, 'claimTtlMs', 60_000),
    fallbackClaimDelayMs: positiveInteger(options.fallbackClaimDelayMs, 'fallbackClaimDelayMs', 50),
    membershipIntervalMs: positiveInteger(options.membershipIntervalMs, 'membershipIntervalMs', 1000),
    maxPending: positiveInteger(options.maxPending, 'maxPending', 100_000),
  };
}

/** `SB_CONFIG_INVALID` unless a topic or group name fits in a key (1 to 200 characters, no spaces or braces). */
export function checkName(kind: string, value: string): void {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${kind} "${value}" must be 1 to 200 characters without spaces or braces` });
  }
}
