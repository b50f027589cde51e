import type { ConnectionSource } from './connection.js';
import { assertPrefix } from './names.js';

export interface NatsBrokerOptions extends ConnectionSource {
  /**
   * Namespace of every name the broker creates: subjects `<prefix>.<topic>`, streams
   * `<PREFIX>_<topic>` (upper case, unsafe characters replaced; see `docs/adapters/nats.md`).
   * Default `sb` (streams `SB_<topic>`).
   */
  readonly prefix?: string;
  /** `file` (default) survives a server restart; `memory` does not. */
  readonly storage?: 'file' | 'memory';
  /** Stream replicas in a cluster (1, 3 or 5). Default 1. */
  readonly replicas?: number;
  /**
   * `interest` (default): a message is removed once every group has acknowledged it.
   * `limits`: messages stay until `maxAgeMs` / the stream limits remove them (lets you replay history).
   */
  readonly retention?: 'interest' | 'limits';
  /** Oldest message the stream keeps, in ms. 0 (default) = no age limit. */
  readonly maxAgeMs?: number;
  /** Window in which a second publish with the same MessageId is dropped. Default 120 000 ms. */
  readonly duplicateWindowMs?: number;
  /**
   * Most deliveries of one message to a group before JetStream stops delivering it. Default -1
   * (unlimited): dead-lettering is decided above the broker by attempt count, where it is recorded
   * and replayable; a finite value here drops the message silently for that group once reached.
   */
  readonly maxDeliver?: number;
  /** Floor of `max_ack_pending` for every group's consumer (raised to `maxInFlight` when larger). Default 1 024. */
  readonly maxAckPending?: number;
  /** Largest body accepted, in bytes. Default: the server's `max_payload` minus 8 KiB kept for headers. */
  readonly maxMessageBytes?: number;
  /** How long one publish may keep retrying (reconnects, timeouts) before it fails. Default 15 000 ms. */
  readonly publishTimeoutMs?: number;
  /** Publishes of one `publishBatch` in flight at once. Default 256. */
  readonly publishConcurrency?: number;
  /** How long `close()` waits for running handlers before releasing their deliveries. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /**
   * `false` (default): an ack is a plain JetStream ack; `ack()` resolves once the server has
   * received it (one flush round trip shared by every ack of a tick). An ack lost with the
   * connection means one redelivery, which the inbox absorbs. `true`: every ack waits for
   * JetStream's own confirmation (`ackAck`), a request/reply per message, several times slower.
   */
  readonly doubleAck?: boolean;
  /** Lifetime of one pull request; also the longest a closing subscription waits for an open pull. Default 1 000 ms (the client's minimum). */
  readonly fetchExpiresMs?: number;
}

export interface ResolvedNatsOptions {
  readonly prefix: string;
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  readonly retention: 'interest' | 'limits';
  readonly maxAgeMs: number;
  readonly duplicateWindowMs: number;
  readonly maxDeliver: number;
  readonly maxAckPending: number;
  readonly publishTimeoutMs: number;
  readonly publishConcurrency: number;
  readonly drainTimeoutMs: number;
  readonly fetchExpiresMs: number;
  readonly doubleAck: boolean;
}

export function resolveOptions(options: NatsBrokerOptions): ResolvedNatsOptions {
  assertPrefix(options.prefix ?? 'sb');
  return {
    prefix: options.prefix ?? 'sb',
    storage: options.storage ?? 'file',
    replicas: options.replicas ?? 1,
    retention: options.retention ?? 'interest',
    maxAgeMs: options.maxAgeMs ?? 0,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    maxDeliver: options.maxDeliver ?? -1,
    maxAckPending: options.maxAckPending ?? 1024,
    publishTimeoutMs: options.publishTimeoutMs ?? 15_000,
    publishConcurrency: options.publishConcurrency ?? 256,
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
    fetchExpiresMs: Math.max(1000, options.fetchExpiresMs ?? 1000),
    doubleAck: options.doubleAck ?? false,
  };
}
