import { SwitchboardError } from './errors.js';

/**
 * Storage behind the `Idempotency-Key` of synchronous calls: the first request's answer is kept,
 * and a retry with the same key gets it again instead of running the operation twice.
 *
 * ## Protocol
 *
 * The server calls `begin` before running an operation. A `started` answer hands it the key (with a
 * `token`); it then calls exactly one of `complete` (an answer worth replaying) or `abandon`
 * (nothing to replay: a retry must run again), with that token.
 *
 * ## What every store guarantees (the conformance suite in `@switchboard/testkit` checks it)
 *
 * - **Scope.** Records are keyed by `(scope, key)`; the server builds the scope from the operation
 *   and the authenticated caller (`idempotencyScope`), so one caller's keys never answer another's.
 * - **Atomic begin.** Of concurrent begins for one `(scope, key)`, exactly one gets `started`; the
 *   others get `in-progress` (same body) or `mismatch` (another body).
 * - **Same key, same body → same answer** (`replay`), until `ttlMs` after completion; after it the
 *   key behaves as never used. **Same key, other body → `mismatch`**, in progress or completed.
 * - **Crash safety.** A record still in progress `lockMs` after its begin belongs to a process that
 *   died: the next `begin` takes it over (`started`, a new token); a `complete` or `abandon` with
 *   the old token then changes nothing.
 * - **Bounded.** At most `maxEntries` records and `maxBytes` bytes (keys, scopes, hashes and stored
 *   answers). To make room for a new key the store drops expired records, then the oldest
 *   completed ones. It **never drops a record in progress**: when only those are left it refuses the
 *   new key (`full`, with `retryAfterMs`), and the server answers 503 `SB_IDEMPOTENCY_STORE_FULL`
 *   with `Retry-After`. Refusing is the safe side: evicting a running key would let a retry run the
 *   operation a second time, concurrently, which is what the key exists to prevent. An answer larger
 *   than `maxBytes` on its own is not kept (the key is released, a retry runs again).
 * - **Failures throw** (connection lost): the server answers 503 `SB_STORE_UNAVAILABLE` and runs nothing.
 */
export interface IdempotencyStore {
  begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult>;
  /** Stores the answer of a started key for replays during `ttlMs`. A stale `token` changes nothing. */
  complete(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): Promise<void>;
  /** Releases a started key without an answer. A stale `token` changes nothing. */
  abandon(lock: IdempotencyLock): Promise<void>;
  /** Releases timers and connections. */
  close?(): Promise<void>;
}

export interface IdempotencyBegin {
  /** Whose key and for what: see `idempotencyScope`. */
  readonly scope: string;
  /** The `Idempotency-Key` header (1 to 255 characters). */
  readonly key: string;
  /** SHA-256 of the request body, hex. */
  readonly requestHash: string;
  /** How long an in-progress record blocks the key before it counts as abandoned. */
  readonly lockMs: number;
}

/** A key the caller owns after `started`. */
export interface IdempotencyLock {
  readonly scope: string;
  readonly key: string;
  readonly token: string;
}

export type IdempotencyBeginResult =
  /** The caller owns the key now and must `complete` or `abandon` it with `token`. */
  | { readonly status: 'started'; readonly token: string }
  /** The key was completed with the same request: answer with this. */
  | { readonly status: 'replay'; readonly response: StoredResponse }
  /** The key was used with a different request body. */
  | { readonly status: 'mismatch' }
  /** The same request is running elsewhere right now. */
  | { readonly status: 'in-progress' }
  /** The store is at its bounds with records in progress only: no new key now. */
  | { readonly status: 'full'; readonly retryAfterMs: number };

/** An answer as stored and replayed. */
export interface StoredResponse {
  readonly status: number;
  /** Headers that matter (content-type, location, retry-after...), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Bounds every store takes. */
export interface IdempotencyBounds {
  /** Most records kept (in progress and completed). Default 100 000. */
  readonly maxEntries?: number;
  /** Most bytes kept (UTF-8 of scopes, keys, hashes, stored answers). Default 64 MiB. */
  readonly maxBytes?: number;
}

export const DEFAULT_IDEMPOTENCY_MAX_ENTRIES = 100_000;
export const DEFAULT_IDEMPOTENCY_MAX_BYTES = 64 * 1024 * 1024;

/** `retryAfterMs` of a `full` answer: in-progress calls usually end within a second. */
export const IDEMPOTENCY_FULL_RETRY_AFTER_MS = 1_000;

/** Fixed cost counted per record, besides its strings: bookkeeping, indexes. */
const RECORD_OVERHEAD = 64;

/**
 * The scope of a key: the operation and the caller. `principal` is the authenticated caller when
 * the service resolves one; without one every caller shares the anonymous scope of the operation
 * (keys are then only as private as they are unguessable: send random keys).
 */
export function idempotencyScope(operation: string, principal: string | undefined): string {
  return principal === undefined ? `anonymous\n${operation}` : `principal:${principal}\n${operation}`;
}

/** Bytes a record counts against `maxBytes`. */
export function idempotencyRecordBytes(scope: string, key: string, requestHash: string, response?: StoredResponse): number {
  let bytes = RECORD_OVERHEAD + byteLength(scope) + byteLength(key) + requestHash.length;
  if (response !== undefined) {
    bytes += byteLength(response.body) + 4;
    for (const name in response.headers) bytes += name.length + byteLength(response.headers[name] as string);
  }
  return bytes;
}

function byteLength(text: string): number {
  // UTF-8 length without allocating: ASCII 1, up to U+07FF 2, surrogate pairs 4, the rest 3.
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The bounds with their defaults, checked. */
export function resolveIdempotencyBounds(bounds: IdempotencyBounds): { readonly maxEntries: number; readonly maxBytes: number } {
  const maxEntries = bounds.maxEntries ?? DEFAULT_IDEMPOTENCY_MAX_ENTRIES;
  const maxBytes = bounds.maxBytes ?? DEFAULT_IDEMPOTENCY_MAX_BYTES;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `idempotency maxEntries must be an integer >= 1, got ${maxEntries}` });
  }
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `idempotency maxBytes must be an integer >= 1, got ${maxBytes}` });
  }
  return { maxEntries, maxBytes };
}
