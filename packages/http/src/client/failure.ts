import type { OperationError } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/** What one failed attempt means for the upstream's circuit breaker. */
export type Health =
  /** The upstream answered sanely (a 4xx, a declared error): it is up. */
  | 'up'
  /** The upstream is unreachable, timed out or answered 5xx. */
  | 'fault'
  /** Nothing was learned (the caller aborted, the client closed). */
  | 'unknown';

/** One failed attempt, classified for the retry loop and the breaker. */
export interface Failure {
  readonly ok: false;
  readonly error: SwitchboardError | OperationError;
  /** Whether another attempt may succeed (the retry loop still checks that retrying is safe). */
  readonly retry: boolean;
  readonly health: Health;
  /** From `Retry-After`, when the upstream sent one. */
  readonly retryAfterMs: number | undefined;
}

export function failure(error: SwitchboardError | OperationError, retry: boolean, health: Health, retryAfterMs?: number): Failure {
  return { ok: false, error, retry, health, retryAfterMs };
}

/**
 * Why the client itself cut an attempt short: the caller's signal, the call's deadline, the
 * attempt's own time limit (the call's budget is not spent), or the client closing.
 */
export type Cut = 'none' | 'caller' | 'deadline' | 'attempt' | 'closed';

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CLOSED_CODES = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
const PROGRAMMING_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects fail with an AggregateError whose members carry the codes.
  const errors = (error as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.length > 0) return errorCode(errors[0]);
  return undefined;
}

/** Maps what undici threw (while sending or reading the body) to a typed failure. */
export function transportFailure(error: unknown, cut: Cut, detail: string, callerReason: unknown): Failure {
  switch (cut) {
    case 'caller':
      return failure(new SwitchboardError('SB_ABORTED', { detail, cause: callerReason }), false, 'unknown');
    case 'deadline':
      return failure(new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `${detail}: the call's deadline passed` }), false, 'fault');
    case 'attempt':
      return failure(new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `${detail}: the attempt timed out` }), true, 'fault');
    case 'closed':
      return failure(new SwitchboardError('SB_CLOSED', { detail: `${detail}: the client was closed`, cause: error }), false, 'unknown');
    case 'none':
      break;
  }
  const code = errorCode(error);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return failure(new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `${detail}: ${code}`, cause: error }), true, 'fault');
  }
  if (code !== undefined && CLOSED_CODES.has(code)) {
    return failure(new SwitchboardError('SB_CLOSED', { detail: `${detail}: the dispatcher is closed`, cause: error }), false, 'unknown');
  }
  if (code !== undefined && PROGRAMMING_CODES.has(code)) {
    return failure(new SwitchboardError('SB_INTERNAL', { detail: `${detail}: invalid request`, cause: error }), false, 'unknown');
  }
  const reason = code ?? (error instanceof Error ? error.message : 'connection failed');
  return failure(new SwitchboardError('SB_UNAVAILABLE', { detail: `${detail}: ${reason}`, cause: error }), true, 'fault');
}
