import type { IncomingMessage } from 'node:http';
import { JSON_MAX_DEPTH, SwitchboardError } from '@switchboard/core';
import type { IdempotencyStore } from '../idempotency/store.js';
import type { StaticProblem } from './respond.js';
import { staticProblem } from './respond.js';
import type { HttpService, OperationInterceptor } from './types.js';

/** Problems whose body never changes, serialised once per service. */
export interface StaticProblems {
  readonly malformedJson: StaticProblem;
  readonly notUtf8: StaticProblem;
  readonly jsonTooDeep: StaticProblem;
  readonly unsupportedMediaType: StaticProblem;
  readonly bodyTooLarge: StaticProblem;
  readonly requestTimeout: StaticProblem;
  readonly overloaded: StaticProblem;
  readonly shuttingDown: StaticProblem;
  readonly deadlineExceeded: StaticProblem;
  readonly keyReused: StaticProblem;
  readonly keyInProgress: StaticProblem;
  readonly badKey: StaticProblem;
  readonly badTimeout: StaticProblem;
  readonly storeUnavailable: StaticProblem;
  readonly internal: StaticProblem;
  readonly unknownOperation: StaticProblem;
  readonly notFound: StaticProblem;
}

export function buildStaticProblems(bodyLimit: number, retryAfterSeconds: number): StaticProblems {
  const retryAfter = { 'retry-after': String(retryAfterSeconds) };
  const close = { connection: 'close' };
  return {
    malformedJson: staticProblem('SB_MALFORMED_JSON', 'The request body is not valid JSON'),
    notUtf8: staticProblem('SB_MALFORMED_JSON', 'The request body is not valid UTF-8'),
    jsonTooDeep: staticProblem('SB_JSON_TOO_DEEP', `The request body nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels`),
    unsupportedMediaType: staticProblem('SB_UNSUPPORTED_MEDIA_TYPE', 'Send the input as application/json'),
    bodyTooLarge: staticProblem('SB_BODY_TOO_LARGE', `The body is larger than ${bodyLimit} bytes`, close),
    requestTimeout: staticProblem('SB_REQUEST_TIMEOUT', 'The request body did not arrive in time', close),
    overloaded: staticProblem('SB_OVERLOADED', 'Too many requests in flight', retryAfter),
    shuttingDown: staticProblem('SB_OVERLOADED', 'The service is shutting down', { ...retryAfter, ...close }),
    deadlineExceeded: staticProblem('SB_DEADLINE_EXCEEDED', 'The deadline passed before the operation finished'),
    keyReused: staticProblem('SB_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different body'),
    keyInProgress: staticProblem('SB_IDEMPOTENCY_IN_PROGRESS', undefined, retryAfter),
    badKey: staticProblem('SB_BAD_REQUEST', 'Idempotency-Key must be 1 to 255 characters'),
    badTimeout: staticProblem('SB_BAD_REQUEST', 'Switchboard-Timeout-Ms must be a non-negative integer'),
    storeUnavailable: staticProblem('SB_STORE_UNAVAILABLE', 'The idempotency store could not be reached', retryAfter),
    internal: staticProblem('SB_INTERNAL'),
    unknownOperation: staticProblem('SB_UNKNOWN_OPERATION'),
    notFound: staticProblem('SB_NOT_FOUND'),
  };
}

export interface IdempotencyRuntime {
  readonly store: IdempotencyStore;
  readonly ttlMs: number;
  readonly lockMs: number;
  /** True when the service created the store and must close it. */
  readonly owned: boolean;
}

/** Shared, mutable state of one service that every request of it reads. */
export interface ServiceRuntime {
  readonly service: HttpService;
  readonly contractName: string;
  readonly bodyLimit: number;
  readonly bodyTimeoutMs: number;
  readonly maxInFlight: number;
  readonly idempotency: IdempotencyRuntime | undefined;
  readonly principal: ((req: IncomingMessage) => string | undefined) | undefined;
  readonly interceptors: readonly OperationInterceptor[];
  readonly onError: ((error: unknown, info: { readonly operation: string; readonly status: number }) => void) | undefined;
  readonly problems: StaticProblems;
  /** Aborted when a graceful close gives up. */
  readonly shutdown: AbortController;
  /** Calls with their own deadline controller, aborted too on forced shutdown. */
  readonly deadlined: Set<AbortController>;
  closing: boolean;
  inFlight: number;
  /** Set while `close` waits for in-flight calls. */
  onDrained: (() => void) | undefined;
}

export function report(runtime: ServiceRuntime, error: unknown, operation: string, status: number): void {
  if (runtime.onError === undefined) return;
  try {
    runtime.onError(error, { operation, status });
  } catch {
    // A failing error reporter must not break the answer.
  }
}

export const shutdownReason = (): SwitchboardError => new SwitchboardError('SB_OVERLOADED', { detail: 'The service is shutting down' });
