import { positiveInteger } from '@switchboard/core/kit';

export interface MemoryBrokerOptions {
  /** Largest body accepted, in bytes. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** How long `Subscription.close` waits for running handlers before releasing their deliveries. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
}

export interface ResolvedMemoryBrokerOptions {
  readonly maxMessageBytes: number;
  readonly drainTimeoutMs: number;
}

/** The options checked (`SB_CONFIG_INVALID`), with their defaults. */
export function resolveMemoryBrokerOptions(options: MemoryBrokerOptions): ResolvedMemoryBrokerOptions {
  return {
    maxMessageBytes: positiveInteger(options.maxMessageBytes, 'maxMessageBytes', 16 * 1024 * 1024),
    drainTimeoutMs: positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000),
  };
}
