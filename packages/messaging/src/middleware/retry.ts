import type { BackoffOptions, DeadLetterReason, ProblemDetails } from '@switchboard/core';
import { backoffDelay, isSwitchboardError, PermanentError, RetryLaterError, SwitchboardError } from '@switchboard/core';
import { describeError } from '@switchboard/core/kit';
import type { Middleware, Outcome } from '../pipeline.js';

/** An operation's declared error, carried with its problem document and whether retrying can help. */
export class OperationFailure extends Error {
  readonly problem: ProblemDetails;
  readonly retryable: boolean;
  constructor(problem: ProblemDetails, retryable: boolean, cause: unknown) {
    super(problem.detail === undefined ? problem.title : `${problem.title}: ${problem.detail}`, { cause });
    this.name = 'OperationFailure';
    this.problem = problem;
    this.retryable = retryable;
  }
}

/** Dead-letter reason of each permanent core error. */
const REASONS: Readonly<Record<string, DeadLetterReason>> = {
  SB_NOT_CLOUDEVENT: 'not-cloudevent',
  SB_MALFORMED_JSON: 'not-cloudevent',
  SB_JSON_TOO_DEEP: 'not-cloudevent',
  SB_UNSUPPORTED_MEDIA_TYPE: 'not-cloudevent',
  SB_UNKNOWN_TYPE: 'unknown-type',
  SB_MESSAGE_INVALID: 'invalid',
  SB_CLAIM_CHECK_MISSING: 'claim-check',
  SB_CLAIM_CHECK_HASH_MISMATCH: 'claim-check',
  SB_DATAREF_REFUSED: 'claim-check',
  SB_PERMANENT: 'permanent',
  SB_STORE_REFUSED: 'store',
};

export type Classification =
  | { readonly permanent: true; readonly reason: DeadLetterReason; readonly problem: ProblemDetails }
  | { readonly permanent: false; readonly problem: ProblemDetails; readonly delayMs?: number };

/**
 * What a failure means. Permanent: `PermanentError`, a non-retryable `SwitchboardError` (not a
 * CloudEvent, unknown type, schema failure, claim check, invalid output) and a declared operation
 * error that is not `retryable`. Everything else is retried; `RetryLaterError` and a retryable
 * `SwitchboardError` with `retryAfterMs` choose their own delay.
 */
export function classify(error: unknown): Classification {
  if (error instanceof PermanentError) {
    return { permanent: true, reason: 'permanent', problem: new SwitchboardError('SB_PERMANENT', { detail: error.message }).toProblem() };
  }
  if (error instanceof OperationFailure) {
    return error.retryable
      ? { permanent: false, problem: error.problem }
      : { permanent: true, reason: 'permanent', problem: error.problem };
  }
  if (error instanceof RetryLaterError) {
    return { permanent: false, problem: failed(error), delayMs: Math.max(0, error.delayMs) };
  }
  if (isSwitchboardError(error)) {
    if (!error.retryable) return { permanent: true, reason: REASONS[error.code] ?? 'permanent', problem: error.toProblem() };
    return error.retryAfterMs === undefined
      ? { permanent: false, problem: error.toProblem() }
      : { permanent: false, problem: error.toProblem(), delayMs: error.retryAfterMs };
  }
  return { permanent: false, problem: failed(error) };
}

function failed(error: unknown): ProblemDetails {
  return { ...new SwitchboardError('SB_HANDLER_FAILED', { detail: describeError(error) }).toProblem(), retryable: true };
}

export interface RetryMiddlewareOptions {
  readonly maxAttempts: number;
  readonly backoff?: BackoffOptions;
  readonly random?: () => number;
}

/**
 * Turns a failing step into an outcome: dead-letter at once for a permanent failure, dead-letter
 * after `maxAttempts`, otherwise redeliver after exponential backoff with jitter (core
 * `backoffDelay`) or the delay the error asked for.
 */
export function retry(options: RetryMiddlewareOptions): Middleware {
  return (next) => async (message) => {
    try {
      return await next(message);
    } catch (error) {
      const verdict = classify(error);
      if (verdict.permanent) return { kind: 'dead-letter', reason: verdict.reason, error: verdict.problem } satisfies Outcome;
      if (message.attempt >= options.maxAttempts) {
        return { kind: 'dead-letter', reason: 'max-attempts', error: verdict.problem } satisfies Outcome;
      }
      const delayMs = verdict.delayMs ?? backoffDelay(message.attempt, options.backoff, options.random);
      return { kind: 'retry', delayMs, error: verdict.problem, counted: true } satisfies Outcome;
    }
  };
}
