/**
 * Storage behind `Idempotency-Key`. The server calls `begin` before running an operation, then
 * exactly one of `complete` (an answer worth replaying) or `abandon` (nothing to replay: a retry
 * must run again).
 *
 * A store for several processes (SQLite, PostgreSQL, Redis) implements the same three methods:
 * - `begin` must be atomic: of two concurrent begins for one (scope, key), exactly one gets
 *   `started`. SQL: `INSERT ... ON CONFLICT DO NOTHING` then read the row in the same transaction;
 *   Redis: `SET key value NX PX lockMs` then `GET`.
 * - A record that is still in progress after `lockMs` belongs to a process that died: the next
 *   `begin` may take it over (answers `started`).
 * - A completed record lives `ttlMs` after completion, then behaves as if it never existed.
 * - Errors (connection lost) are thrown; the server answers 503 `SB_STORE_UNAVAILABLE` and runs nothing.
 */
export interface IdempotencyStore {
  begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult>;
  complete(scope: string, key: string, response: StoredResponse, ttlMs: number): Promise<void>;
  abandon(scope: string, key: string): Promise<void>;
  /** Releases timers and connections. */
  close?(): Promise<void>;
}

export interface IdempotencyBegin {
  /** Who and what the key belongs to: operation name and caller principal. */
  readonly scope: string;
  /** The `Idempotency-Key` header (at most 255 characters). */
  readonly key: string;
  /** SHA-256 of the request body, hex. */
  readonly requestHash: string;
  /** How long a completed answer is kept. */
  readonly ttlMs: number;
  /** How long an in-progress record blocks the key before it counts as abandoned. */
  readonly lockMs: number;
}

export type IdempotencyBeginResult =
  /** The caller owns the key now and must `complete` or `abandon` it. */
  | { readonly status: 'started' }
  /** The key was completed with the same request: answer with this. */
  | { readonly status: 'replay'; readonly response: StoredResponse }
  /** The key was used with a different request body. */
  | { readonly status: 'mismatch' }
  /** The same request is running elsewhere right now. */
  | { readonly status: 'in-progress' };

/** An answer as stored and replayed. */
export interface StoredResponse {
  readonly status: number;
  /** Headers that matter (content-type, location, retry-after...), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}
