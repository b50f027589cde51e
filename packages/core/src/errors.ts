import type { FieldError } from './standard-schema.js';

/**
 * The one registry of Switchboard's own errors. Every error that crosses a process boundary has a
 * stable code, an HTTP status, a title and whether retrying can help. `docs/errors.md` is checked
 * against this table by a test.
 */
export const errorRegistry = {
  SB_MALFORMED_JSON: { status: 400, title: 'Malformed JSON', retryable: false, description: 'The request body is not valid JSON.' },
  SB_JSON_TOO_DEEP: {
    status: 400,
    title: 'JSON nested too deeply',
    retryable: false,
    description:
      "The JSON nests arrays and objects deeper than accepted: the HTTP server's `maxJsonDepth` (default 64) for request bodies, 512 levels (`JSON_MAX_DEPTH`) for CloudEvents; it was not processed. A message is dead-lettered with reason `not-cloudevent`.",
  },
  SB_VALIDATION: {
    status: 400,
    title: 'Validation failed',
    retryable: false,
    description: 'The input does not match the contract; `errors` lists each failing field as a JSON Pointer and a message.',
  },
  SB_BAD_REQUEST: { status: 400, title: 'Bad request', retryable: false, description: 'A header or parameter is malformed.' },
  SB_UNAUTHORIZED: { status: 401, title: 'Unauthorized', retryable: false, description: 'The request carries no valid credentials.' },
  SB_FORBIDDEN: { status: 403, title: 'Forbidden', retryable: false, description: 'The caller may not perform this request.' },
  SB_UNKNOWN_OPERATION: {
    status: 404,
    title: 'Unknown operation',
    retryable: false,
    description: 'The contract has no operation by that name.',
  },
  SB_NOT_FOUND: { status: 404, title: 'Not found', retryable: false, description: 'No resource at this path.' },
  SB_METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method not allowed',
    retryable: false,
    description: 'The path exists but not for this method; `Allow` lists the methods it takes.',
  },
  SB_REQUEST_TIMEOUT: {
    status: 408,
    title: 'Request timeout',
    retryable: true,
    description: 'The client did not send its whole request in time.',
  },
  SB_CONFLICT: {
    status: 409,
    title: 'Conflict',
    retryable: false,
    description: 'The request conflicts with the current state of the resource.',
  },
  SB_JOB_FINISHED: { status: 409, title: 'Job already finished', retryable: false, description: 'A finished job cannot be canceled.' },
  SB_JOB_GONE: { status: 410, title: 'Job gone', retryable: false, description: 'The job existed but its retention has passed.' },
  SB_BODY_TOO_LARGE: {
    status: 413,
    title: 'Body too large',
    retryable: false,
    description: 'The request body is larger than the configured limit; it was not read past the limit.',
  },
  SB_HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request headers too large',
    retryable: false,
    description:
      "The request's headers are larger than the server takes (Node's `maxHeaderSize`, 16 KiB by default); the connection is closed.",
  },
  SB_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported media type',
    retryable: false,
    description: 'The request body must be `application/json` (or a CloudEvents media type where events are received).',
  },
  SB_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    title: 'Idempotency key reused',
    retryable: false,
    description: 'The Idempotency-Key was already used with a different request body.',
  },
  SB_IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    title: 'Request with this Idempotency-Key in progress',
    retryable: true,
    description: 'A request with the same Idempotency-Key is still being processed; retry after it finished.',
  },
  SB_TOO_MANY_REQUESTS: { status: 429, title: 'Too many requests', retryable: true, description: 'The caller is over its rate limit.' },
  SB_HANDLER_FAILED: {
    status: 500,
    title: 'Handler failed',
    retryable: false,
    description: 'The operation handler threw an unexpected error. No stack trace is sent.',
  },
  SB_INVALID_OUTPUT: {
    status: 500,
    title: 'Invalid output',
    retryable: false,
    description: "The handler's answer does not match the contract's output schema; it was not sent.",
  },
  SB_RESULT_NOT_SERIALIZABLE: {
    status: 500,
    title: 'Result not serializable',
    retryable: false,
    description:
      'The handler returned a value JSON cannot hold (a BigInt, a cycle, nesting too deep); nothing was sent or stored, and a job with it fails.',
  },
  SB_INTERNAL: { status: 500, title: 'Internal error', retryable: false, description: 'An unexpected error inside Switchboard.' },
  SB_BAD_GATEWAY: {
    status: 502,
    title: 'Bad upstream answer',
    retryable: true,
    description: 'The upstream answered something that is not a valid Switchboard response.',
  },
  SB_OVERLOADED: {
    status: 503,
    title: 'Overloaded',
    retryable: true,
    description: 'The service is shedding load (queue full, shutting down); `Retry-After` says when to come back.',
  },
  SB_UNAVAILABLE: {
    status: 503,
    title: 'Upstream unavailable',
    retryable: true,
    description:
      'The upstream could not be reached (connection refused, reset, DNS); on a service with authentication, the credentials could not be checked (the JWKS of the issuer could not be fetched).',
  },
  SB_IDEMPOTENCY_STORE_FULL: {
    status: 503,
    title: 'Idempotency store full',
    retryable: true,
    description:
      'The idempotency store is at its bound with requests still in progress, so it takes no new key now; `Retry-After` says when to come back.',
  },
  SB_CIRCUIT_OPEN: {
    status: 503,
    title: 'Circuit open',
    retryable: true,
    description: 'The client stopped calling a failing upstream for a while; no request was sent.',
  },
  SB_STORE_UNAVAILABLE: {
    status: 503,
    title: 'Store unavailable',
    retryable: true,
    description: 'The job, receipt or idempotency store could not be reached; nothing was half-created.',
  },
  SB_STORE_REFUSED: {
    status: 500,
    title: 'Store refused the value',
    retryable: false,
    description:
      'A store cannot hold a value of this request (an id or source over its limit, a value too long or with bytes the engine refuses, a constraint); nothing was written and retrying cannot help, so a message is dead-lettered with reason `store`.',
  },
  SB_DEADLINE_EXCEEDED: {
    status: 504,
    title: 'Deadline exceeded',
    retryable: true,
    description: "The caller's deadline or the operation's time limit passed before an answer.",
  },
  SB_ABORTED: { status: 499, title: 'Aborted', retryable: false, description: 'The caller aborted the request (AbortSignal).' },
  SB_JOB_FAILED: { status: 500, title: 'Job failed', retryable: false, description: 'The asynchronous job ended in failure.' },
  SB_JOB_CANCELED: { status: 409, title: 'Job canceled', retryable: false, description: 'The asynchronous job was canceled.' },
  SB_CALLBACK_NOT_ALLOWED: {
    status: 400,
    title: 'Callback URL not allowed',
    retryable: false,
    description: 'The completion callback URL is not on the allow-list.',
  },
  SB_WEBHOOK_INVALID: {
    status: 401,
    title: 'Invalid webhook signature',
    retryable: false,
    description: 'The webhook signature or timestamp does not verify.',
  },
  SB_SIGNATURE_INVALID: {
    status: 403,
    title: 'Message signature invalid',
    retryable: false,
    description:
      'The CloudEvent carries no signature where one is required, or one that does not verify with a key bound to its `source` (see security.md, Signed messages); on a broker it is dead-lettered with reason `signature`.',
  },
  SB_NOT_CLOUDEVENT: {
    status: 400,
    title: 'Not a CloudEvent',
    retryable: false,
    description: 'The message is not a valid CloudEvents 1.0 event; it is dead-lettered with its raw bytes.',
  },
  SB_UNKNOWN_TYPE: {
    status: 400,
    title: 'Unknown message or event type',
    retryable: false,
    description: 'No contract entry and no handler for this CloudEvents `type`.',
  },
  SB_MESSAGE_INVALID: {
    status: 400,
    title: 'Message failed its schema',
    retryable: false,
    description: "The message data does not match the contract's schema; it is dead-lettered with the field errors.",
  },
  SB_PERMANENT: {
    status: 500,
    title: 'Permanent failure',
    retryable: false,
    description: 'The handler said retrying cannot help (`PermanentError`); the message is dead-lettered at once.',
  },
  SB_HANDLER_TIMEOUT: {
    status: 504,
    title: 'Handler timed out',
    retryable: true,
    description: 'A message handler ran past its time limit; the message is redelivered.',
  },
  SB_MESSAGE_TOO_LARGE: {
    status: 413,
    title: 'Message too large',
    retryable: false,
    description: "The message is larger than the broker's limit; enable the claim check to send it.",
  },
  SB_BROKER_UNAVAILABLE: {
    status: 503,
    title: 'Broker unavailable',
    retryable: true,
    description: 'The broker could not be reached or did not confirm the publish.',
  },
  SB_RECEIPT_NOT_FOUND: {
    status: 404,
    title: 'Receipt not found',
    retryable: false,
    description: 'The receiver never received this MessageId.',
  },
  SB_CLAIM_CHECK_MISSING: {
    status: 404,
    title: 'Claim-checked blob missing',
    retryable: false,
    description: 'The blob referenced by `dataref` is not in the blob store (expired or never stored).',
  },
  SB_CLAIM_CHECK_HASH_MISMATCH: {
    status: 422,
    title: 'Claim-checked blob hash mismatch',
    retryable: false,
    description: 'The blob read through the claim check does not match the hash on the event.',
  },
  SB_DATAREF_REFUSED: {
    status: 400,
    title: 'dataref refused',
    retryable: false,
    description: 'The `dataref` points outside the configured blob stores; it is not fetched.',
  },
  SB_CHANGES_SETUP: {
    status: 500,
    title: 'Change source not set up',
    retryable: false,
    description:
      'The database is not ready for a change source (PostgreSQL: `wal_level`, publication, replication slot, privileges; SQLite: the outbox table; both: a table or column); `problems` lists each one with its fix.',
  },
  SB_CONFIG_INVALID: { status: 500, title: 'Invalid configuration', retryable: false, description: 'A configuration value is invalid.' },
  SB_FILTER_INVALID: {
    status: 400,
    title: 'Invalid filter expression',
    retryable: false,
    description:
      'A CloudEvents SQL filter does not parse, or calls an unknown function or with the wrong number of arguments; `offset`, `line` and `column` say where.',
  },
  SB_CLOSED: { status: 503, title: 'Closed', retryable: false, description: 'The client, broker or store was closed.' },
} as const satisfies Record<string, ErrorEntry>;

export interface ErrorEntry {
  readonly status: number;
  readonly title: string;
  readonly retryable: boolean;
  readonly description: string;
}

export type ErrorCode = keyof typeof errorRegistry;

/** Stable RFC 9457 `type` URI of a registry error, e.g. `urn:switchboard:error:validation`. */
export function problemType(code: string): string {
  return `urn:switchboard:error:${code.replace(/^SB_/, '').toLowerCase().replaceAll('_', '-')}`;
}

/** RFC 9457 problem details, as sent on the wire. */
export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly code: string;
  readonly errors?: readonly FieldError[];
  readonly data?: unknown;
  readonly retryable?: boolean;
  readonly [extension: string]: unknown;
}

const BRAND = Symbol.for('switchboard.error');

export interface SwitchboardErrorOptions {
  readonly detail?: string;
  readonly cause?: unknown;
  readonly errors?: readonly FieldError[];
  /** Extra members for the problem document. */
  readonly extensions?: Readonly<Record<string, unknown>>;
  /** Overrides the registry's status (e.g. a 503 from upstream kept as is). */
  readonly status?: number;
  /** Milliseconds after which a retry may succeed (from Retry-After). */
  readonly retryAfterMs?: number;
}

/**
 * Every error Switchboard raises. The brand survives duplicate installs of the package, so
 * `instanceof` works across copies.
 */
export class SwitchboardError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly title: string;
  readonly detail: string | undefined;
  readonly errors: readonly FieldError[] | undefined;
  readonly extensions: Readonly<Record<string, unknown>>;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, options: SwitchboardErrorOptions = {}) {
    const entry = errorRegistry[code];
    super(
      options.detail ? `${entry.title}: ${options.detail}` : entry.title,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'SwitchboardError';
    this.code = code;
    this.status = options.status ?? entry.status;
    this.retryable = entry.retryable;
    this.title = entry.title;
    this.detail = options.detail;
    this.errors = options.errors;
    this.extensions = options.extensions ?? {};
    this.retryAfterMs = options.retryAfterMs;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  toProblem(instance?: string): ProblemDetails {
    return {
      ...this.extensions,
      type: problemType(this.code),
      title: this.title,
      status: this.status,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(instance === undefined ? {} : { instance }),
      code: this.code,
      ...(this.errors === undefined ? {} : { errors: this.errors }),
      retryable: this.retryable,
    };
  }
}

export function isSwitchboardError(value: unknown, code?: ErrorCode): value is SwitchboardError {
  return value instanceof SwitchboardError && (code === undefined || value.code === code);
}

const OPERATION_BRAND = Symbol.for('switchboard.operation-error');

/**
 * A domain error an operation declares in its contract (`errors: { NameTaken: { status: 409 } }`).
 * Handlers throw it; clients receive it back with the same code and data.
 */
export class OperationError<Code extends string = string, Data = unknown> extends Error {
  readonly code: Code;
  readonly data: Data;
  readonly detail: string | undefined;
  /** Filled in from the contract when the error crosses the wire. */
  status: number;

  constructor(code: Code, options: { detail?: string; data?: Data; status?: number; cause?: unknown } = {}) {
    super(options.detail ? `${code}: ${options.detail}` : code, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OperationError';
    this.code = code;
    this.data = options.data as Data;
    this.detail = options.detail;
    this.status = options.status ?? 400;
    Object.defineProperty(this, OPERATION_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[OPERATION_BRAND] === true;
  }
}

/** `type` URI of a contract-declared error. */
export function operationProblemType(contractName: string, code: string): string {
  return `urn:switchboard:${contractName}:error:${code}`;
}

const PERMANENT_BRAND = Symbol.for('switchboard.permanent-error');

/** Thrown by a message handler: retrying cannot help; dead-letter the message at once. */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
    Object.defineProperty(this, PERMANENT_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PERMANENT_BRAND] === true;
  }
}

const RETRY_LATER_BRAND = Symbol.for('switchboard.retry-later-error');

/** Thrown by a message handler: not now; redeliver after `delayMs` (does count as an attempt). */
export class RetryLaterError extends Error {
  readonly delayMs: number;
  constructor(message: string, delayMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryLaterError';
    this.delayMs = delayMs;
    Object.defineProperty(this, RETRY_LATER_BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RETRY_LATER_BRAND] === true;
  }
}

/** A short, safe description of any thrown value (no stack). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/** Rebuilds an error from a problem document received over the wire. */
export function errorFromProblem(problem: ProblemDetails, retryAfterMs?: number): SwitchboardError {
  const code = (problem.code in errorRegistry ? problem.code : 'SB_INTERNAL') as ErrorCode;
  const { type: _type, title: _title, status, detail, code: _code, errors, retryable: _retryable, ...rest } = problem;
  return new SwitchboardError(code, {
    status,
    ...(detail === undefined ? {} : { detail }),
    ...(errors === undefined ? {} : { errors }),
    extensions: rest,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}
