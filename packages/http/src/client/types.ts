import type {
  AnyContract,
  BackoffOptions,
  CallOutput,
  HandlerContext,
  OperationError,
  OperationErrorCode,
  OperationErrorData,
  OperationName,
  SwitchboardError,
} from '@switchboard/core';
import type { Dispatcher } from 'undici';
import type { CircuitBreaker, CircuitBreakerOptions } from './breaker.js';

/** How the client retries a call that failed for a transient reason. */
export interface RetryOptions extends BackoffOptions {
  /** Most attempts per call, the first one included. Default 3; 1 disables retries. */
  readonly attempts?: number;
  /** Upper bound for a `Retry-After` the upstream asks for, in ms. Default 30 000. */
  readonly maxRetryAfterMs?: number;
  /**
   * Adds a generated `Idempotency-Key` to every call of a non-idempotent operation (reused by all
   * its attempts), so that it can be retried safely. Default true. When false, such calls are
   * retried only if the caller passes a key.
   */
  readonly idempotencyKeys?: boolean;
}

export interface ClientOptions {
  /** Where the service is mounted, e.g. `http://orders.internal:8080` or `http://host/api`. */
  readonly baseUrl: string | URL;
  /**
   * The undici dispatcher to send through (an `Agent`, `Pool`, or one with interceptors). The
   * client does not close a dispatcher it was given. Default: a keep-alive `Pool` for the origin.
   */
  readonly dispatcher?: Dispatcher;
  /** Sockets of the default pool. Default 128. */
  readonly connections?: number;
  /** Requests per socket of the default pool (HTTP/1.1 pipelining). Default 1. */
  readonly pipelining?: number;
  /** How long an idle socket of the default pool stays open, in ms. Default 4 000. */
  readonly keepAliveTimeoutMs?: number;
  /** Time allowed to open a connection, in ms. Default 5 000. */
  readonly connectTimeoutMs?: number;
  /** Budget of one call, all attempts and back-off included, in ms. Default 30 000. */
  readonly timeoutMs?: number;
  /** Limit of one attempt, in ms (the rest of the budget is kept for retries). Default: no limit. */
  readonly attemptTimeoutMs?: number;
  /** Retry policy; `false` sends each call once. */
  readonly retry?: RetryOptions | false;
  /** Circuit breaker of the upstream: options, a shared instance, or `false` for none. */
  readonly breaker?: CircuitBreakerOptions | CircuitBreaker | false;
  /** Validate the input against the contract before sending (no request when it fails). Default true. */
  readonly validateInput?: boolean;
  /** Validate outputs and declared error data against the contract on receipt. Default false. */
  readonly validateOutput?: boolean;
  /** Headers sent with every call. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Authentication: asked before every attempt (so a retry uses a refreshed token); the token is sent
   * as `Authorization: Bearer <token>`, none when it answers `undefined`. A provider that throws
   * fails the call with `SB_UNAUTHORIZED` (nothing sent).
   */
  readonly auth?: () => Promise<string | undefined>;
}

/** What a handler context contributes when a handler calls downstream: deadline, trace, abort. */
export type CallContext = Partial<Pick<HandlerContext, 'deadline' | 'traceparent' | 'tracestate' | 'signal'>>;

export interface CallOptions {
  /** Aborts the call; it rejects with `SB_ABORTED` and the request is cancelled. */
  readonly signal?: AbortSignal;
  /** Budget of this call in ms (overrides the client's `timeoutMs`). */
  readonly timeoutMs?: number;
  /** Absolute deadline (epoch ms); the call ends at the earlier of this and `timeoutMs`. */
  readonly deadline?: number;
  /** Idempotency key sent with every attempt; makes a non-idempotent call retryable. */
  readonly idempotencyKey?: string;
  /** W3C `traceparent` of the caller; the request continues its trace with a new span id. */
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** A handler's context: its deadline, trace and signal are passed on (explicit options win). */
  readonly context?: CallContext;
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Overrides the client's retry policy for this call. */
  readonly retry?: RetryOptions | false;
}

/**
 * The error an operation declares under `code`, with its typed `data` (all its declared errors
 * when `E` is left out). `never` for an operation that declares none, including one whose error
 * map was widened to `string` keys.
 */
export type DeclaredError<
  C extends AnyContract,
  K extends OperationName<C>,
  E extends OperationErrorCode<C, K> = OperationErrorCode<C, K>,
> = string extends OperationErrorCode<C, K> ? never : { [Code in E]: OperationError<Code, OperationErrorData<C, K, Code>> }[E];

/** Everything a call can fail with: one of the operation's declared errors, or a `SwitchboardError`. */
export type CallError<C extends AnyContract, K extends OperationName<C>> = DeclaredError<C, K> | SwitchboardError;

export type CallResult<C extends AnyContract, K extends OperationName<C>> =
  | { readonly ok: true; readonly value: CallOutput<C, K> }
  | { readonly ok: false; readonly error: CallError<C, K> };
