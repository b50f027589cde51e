import type { BackoffOptions } from '@switchboard/core';
import { backoffDelay } from '@switchboard/core';
import type { RetryOptions } from './types.js';

/** A retry policy with its defaults applied. */
export interface RetryPolicy {
  readonly attempts: number;
  readonly maxRetryAfterMs: number;
  readonly idempotencyKeys: boolean;
  readonly backoff: BackoffOptions;
}

export const NO_RETRY: RetryPolicy = { attempts: 1, maxRetryAfterMs: 0, idempotencyKeys: false, backoff: {} };

export function retryPolicy(options: RetryOptions | false | undefined): RetryPolicy {
  if (options === false) return NO_RETRY;
  const attempts = options?.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError('retry.attempts must be an integer >= 1');
  return {
    attempts,
    maxRetryAfterMs: options?.maxRetryAfterMs ?? 30_000,
    idempotencyKeys: options?.idempotencyKeys ?? true,
    backoff: {
      baseMs: options?.baseMs ?? 100,
      maxMs: options?.maxMs ?? 5_000,
      factor: options?.factor ?? 2,
      jitter: options?.jitter ?? 'full',
    },
  };
}

/**
 * How long to wait before the next attempt: the upstream's `Retry-After` when it sent one
 * (capped), otherwise exponential backoff with jitter. `attempt` is the attempt that just failed.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return backoffDelay(attempt, policy.backoff);
}
