import { type ProblemDetails, SwitchboardError } from './errors.js';

/**
 * Receipts and the inbox: what a consumer group did with each MessageId it received.
 *
 * One record per (consumer group, event source, MessageId): an event's identity is its CloudEvents
 * `source` + `id` (two sources may use the same id), so the MessageId alone never names a record.
 * The same record answers two questions:
 * - the sender's "did my message arrive and what became of it?" (`get`, `getAll`, `list`), and
 * - the consumer's "have I already handled this message?" before running a handler (`claim`).
 *
 * ## States
 *
 * ```
 *   received ──► processing ──► processed        (final)
 *                  ▲   │
 *                  │   ├──────► failed ──► processing (next attempt) ...
 *                  │   └──────► dead-lettered    (final, until `reopen` for a replay)
 *                  └── lease expired (the worker died): claimable again
 * ```
 *
 * Updates may arrive late or out of order (batched writers, several workers, redelivery). The store
 * never moves a record backwards; `mergeReceipt` is the one rule every store applies:
 * - `processed` is final and wins over every other state, including `dead-lettered` (the handler's
 *   effect did happen, so that is what the sender is told).
 * - `dead-lettered` is final against everything except `processed`; only `reopen` (used before a
 *   dead-letter replay) leaves it.
 * - Otherwise an update applies when its position `(attempt, rank)` is after the record's, with the
 *   ranks `received` 0 < `processing` 1 < `failed` 2. So a late `failed` of attempt 1 is ignored
 *   after `processing` of attempt 2, and a late `received` never hides a later state.
 *
 * ## The inbox guarantee, stated exactly
 *
 * Delivery is at-least-once, so a message can reach a group many times. `claim` lets exactly one
 * worker at a time run the handler for a (group, MessageId) — the others get `in-progress` until the
 * lease runs out — and, once `processed` is recorded, every later delivery gets
 * `duplicate-processed` and the handler is not run again. This makes the handler's effect happen
 * **once per group** only when one of these holds:
 * 1. the handler's side effects and the `processed` mark commit in the same transaction, the mark
 *    first and the effects only when it did not answer `ignored` (a run that outlived its lease and
 *    was taken over finds the mark already recorded; the SQLite store offers a synchronous
 *    `recordSync` for use inside the application's own transaction on the same database), or
 * 2. the handler is idempotent.
 *
 * Otherwise the guarantee is "at most once at a time, and never again after success": if the process
 * dies after the effect and before the `processed` mark, or the handler outlives its lease, the
 * message is claimed again and the effect can repeat. Records are kept until `purge`; the retention
 * must be longer than the broker can redeliver a message, or a very late duplicate is claimed as new.
 *
 * All times are milliseconds since the Unix epoch.
 */

export type ReceiptState = 'received' | 'processing' | 'processed' | 'failed' | 'dead-lettered';

export const receiptStates: readonly ReceiptState[] = ['received', 'processing', 'processed', 'failed', 'dead-lettered'];

/** States no update leaves (except `processed` over `dead-lettered`, and `reopen`). */
export function isFinalReceiptState(state: ReceiptState): boolean {
  return state === 'processed' || state === 'dead-lettered';
}

export interface Receipt {
  readonly group: string;
  /** CloudEvents `source` of the event: with `messageId`, its identity. */
  readonly source: string;
  readonly messageId: string;
  readonly state: ReceiptState;
  /** CloudEvents `type`, when known. */
  readonly type?: string;
  /** Topic the message arrived on, when known. */
  readonly topic?: string;
  /** Handler runs started so far (1 during the first run). 0 while only `received`. */
  readonly attempts: number;
  /** First time this group saw the MessageId. Never changes. */
  readonly receivedAt: number;
  /** Time of the last applied update. */
  readonly updatedAt: number;
  /** When the record became `processed`. */
  readonly processedAt?: number;
  /** The latest failure (on `failed` and `dead-lettered`; kept through retries; cleared by `processed`). */
  readonly error?: ProblemDetails;
  /** Short summary of the handler's result, set with `processed` (keep it small: it is stored per message). */
  readonly result?: string;
  /**
   * The principal that delivered the event when the record was created: the authenticated caller of
   * `POST /events`, or the sender a verified signature names on a broker. Set once, never changed
   * (a later delivery by someone else cannot take a receipt over). Receipts over HTTP are shown
   * only to it (or to a reader with the receipts read scope) when the service has authentication.
   */
  readonly sender?: string;
  /** Who holds the processing lease (set by `claim`). */
  readonly leaseOwner?: string;
  /** Until when the processing lease holds; after it another worker may claim the message. */
  readonly leaseUntil?: number;
}

/** What names one receipt: the consumer group and the event's identity (CloudEvents `source` + `id`). */
export interface ReceiptKey {
  readonly group: string;
  readonly source: string;
  readonly messageId: string;
}

/** One upsert for `ReceiptStore.record`. */
export interface ReceiptUpdate extends ReceiptKey {
  readonly state: ReceiptState;
  /**
   * The handler run this update belongs to (1-based, as returned in `claim`'s receipt). Defaults to
   * the record's current `attempts` (at least 1 for states other than `received`).
   */
  readonly attempt?: number;
  readonly type?: string;
  readonly topic?: string;
  /** For `failed` and `dead-lettered`. */
  readonly error?: ProblemDetails;
  /** For `processed`. */
  readonly result?: string;
  /** When it happened; defaults to the store's clock. */
  readonly at?: number;
  /** Kept only when this update creates the record (see `Receipt.sender`). */
  readonly sender?: string;
}

/** One inbox check for `ReceiptStore.claim`. */
export interface ReceiptClaim extends ReceiptKey {
  /** Identifies the claiming worker (diagnostics, `extendLease`). */
  readonly owner: string;
  /** How long the claim holds; after it a redelivery may claim the message again. */
  readonly leaseMs: number;
  readonly type?: string;
  readonly topic?: string;
  /** Kept only when this claim creates the record (see `Receipt.sender`). */
  readonly sender?: string;
}

export type ReceiptClaimResult =
  /** Run the handler. The record is now `processing`; `receipt.attempts` is this run's attempt number. */
  | { readonly outcome: 'claimed'; readonly receipt: Receipt }
  /** Already processed by this group: do not run the handler, acknowledge the delivery. */
  | { readonly outcome: 'duplicate-processed'; readonly receipt: Receipt }
  /** Another worker holds a live lease: do not run the handler; redeliver after `retryAfterMs`. */
  | { readonly outcome: 'in-progress'; readonly receipt: Receipt; readonly retryAfterMs: number }
  /** The message was dead-lettered for this group: do not run it; replay goes through the dead-letter store. */
  | { readonly outcome: 'dead-lettered'; readonly receipt: Receipt };

export type ReceiptClaimOutcome = ReceiptClaimResult['outcome'];

/** What `record` did with one update. */
export type RecordOutcome = 'created' | 'updated' | 'ignored';

export interface ReceiptListFilter {
  readonly group?: string;
  readonly source?: string;
  readonly state?: ReceiptState;
  readonly type?: string;
  readonly topic?: string;
  /** Inclusive lower bound on `receivedAt`. */
  readonly receivedFrom?: number;
  /** Exclusive upper bound on `receivedAt`. */
  readonly receivedTo?: number;
  /** Page size; default 100, at most 1000. */
  readonly limit?: number;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
}

export interface ListPage<T> {
  readonly items: readonly T[];
  /** Present when there may be more items. */
  readonly nextCursor?: string;
}

export interface ReceiptPurgeOptions {
  /** Only these states; default all. */
  readonly states?: readonly ReceiptState[];
}

/**
 * Receipts + inbox store. Every method is safe to call from many workers and processes at once
 * (where the engine is shared). Batched methods apply their items in order and, on engines with
 * transactions, in one transaction (one round trip).
 */
export interface ReceiptStore {
  /**
   * Upserts receipts, in order, never moving a record backwards (see `mergeReceipt`). Returns one
   * outcome per update.
   */
  record(updates: readonly ReceiptUpdate[]): Promise<RecordOutcome[]>;
  /** Inbox check before running a handler; see `ReceiptClaimResult`. */
  claim(request: ReceiptClaim): Promise<ReceiptClaimResult>;
  /** `claim` for many deliveries in one round trip; one result per request, in order. */
  claimBatch(requests: readonly ReceiptClaim[]): Promise<ReceiptClaimResult[]>;
  /**
   * Optional: `record(updates)` then `claimBatch(requests)` as one batch (one transaction, one
   * round trip), with the same results. A consumer writes the `processed` marks of one batch of
   * deliveries together with the claims of the next one through it.
   */
  recordAndClaim?(
    updates: readonly ReceiptUpdate[],
    requests: readonly ReceiptClaim[],
  ): Promise<{ outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }>;
  /**
   * Pushes the lease of a `processing` record held by `owner` to now + `leaseMs` (long handlers).
   * `false` when the record is not processing or is held by someone else.
   */
  extendLease(key: ReceiptKey, owner: string, leaseMs: number): Promise<boolean>;
  /**
   * Moves `dead-lettered` records back to `received` (keeping `attempts` and `error`) so a replayed
   * delivery can be claimed. Other states are left alone. Returns how many were reopened.
   */
  reopen(keys: readonly ReceiptKey[]): Promise<number>;
  /** The receipt of one group for one event, or `undefined` if that group never received it. */
  get(key: ReceiptKey): Promise<Receipt | undefined>;
  /**
   * The receipts of every group that received the MessageId from `source` (empty when none did),
   * by group name; without `source`, those of every source that used that id (by source, then group).
   */
  getAll(messageId: string, source?: string): Promise<Receipt[]>;
  /** Receipts ordered by `receivedAt` (then group, source, MessageId), filtered and paged. */
  list(filter?: ReceiptListFilter): Promise<ListPage<Receipt>>;
  /** Deletes records last updated before `olderThan` (epoch ms). Returns how many were deleted. */
  purge(olderThan: number, options?: ReceiptPurgeOptions): Promise<number>;
  close(): Promise<void>;
}

const RANK: Readonly<Record<ReceiptState, number>> = {
  received: 0,
  processing: 1,
  failed: 2,
  processed: 3,
  'dead-lettered': 3,
};

/**
 * The transition rule every `ReceiptStore` applies. Returns the new record, or `undefined` when the
 * update must be ignored. Pure; stores call it inside their own transaction.
 */
export function mergeReceipt(current: Receipt | undefined, update: ReceiptUpdate, now: number): Receipt | undefined {
  const at = update.at ?? now;
  const minAttempt = update.state === 'received' ? 0 : 1;
  if (current === undefined) {
    const attempt = Math.max(update.attempt ?? minAttempt, minAttempt);
    return build(
      {
        group: update.group,
        source: update.source,
        messageId: update.messageId,
        state: update.state,
        attempts: attempt,
        receivedAt: at,
        updatedAt: at,
        ...(update.sender === undefined ? {} : { sender: update.sender }),
      },
      update,
      at,
    );
  }
  if (current.state === 'processed') return undefined;
  if (current.state === 'dead-lettered' && update.state !== 'processed') return undefined;
  const attempt = Math.max(update.attempt ?? current.attempts, minAttempt);
  if (!isFinalReceiptState(update.state)) {
    const after = attempt > current.attempts || (attempt === current.attempts && RANK[update.state] > RANK[current.state]);
    if (!after) return undefined;
  }
  return build({ ...current, state: update.state, attempts: Math.max(current.attempts, attempt) }, update, at);
}

function build(base: Receipt, update: ReceiptUpdate, at: number): Receipt {
  const { leaseOwner: _owner, leaseUntil: _until, error: previousError, result: _result, processedAt: _processedAt, ...rest } = base;
  const type = update.type ?? base.type;
  const topic = update.topic ?? base.topic;
  const error = update.state === 'processed' ? undefined : (update.error ?? previousError);
  return {
    ...rest,
    ...(type === undefined ? {} : { type }),
    ...(topic === undefined ? {} : { topic }),
    updatedAt: Math.max(at, base.updatedAt),
    ...(update.state === 'processed' ? { processedAt: at } : {}),
    ...(update.state === 'processed' && update.result !== undefined ? { result: update.result } : {}),
    ...(error === undefined ? {} : { error }),
  };
}

/**
 * The claim rule every `ReceiptStore` applies: the outcome for `current`, and the record to write
 * when the outcome is `claimed`.
 */
export function decideClaim(current: Receipt | undefined, request: ReceiptClaim, now: number): ReceiptClaimResult {
  if (current !== undefined) {
    if (current.state === 'processed') return { outcome: 'duplicate-processed', receipt: current };
    if (current.state === 'dead-lettered') return { outcome: 'dead-lettered', receipt: current };
    if (current.state === 'processing' && current.leaseUntil !== undefined && current.leaseUntil > now) {
      return { outcome: 'in-progress', receipt: current, retryAfterMs: current.leaseUntil - now };
    }
  }
  const merged = mergeReceipt(
    current,
    {
      group: request.group,
      source: request.source,
      messageId: request.messageId,
      state: 'processing',
      attempt: (current?.attempts ?? 0) + 1,
      ...(request.type === undefined ? {} : { type: request.type }),
      ...(request.topic === undefined ? {} : { topic: request.topic }),
      ...(request.sender === undefined ? {} : { sender: request.sender }),
    },
    now,
  );
  // mergeReceipt always applies a next-attempt `processing` to a non-final record.
  const base = merged ?? (current as Receipt);
  return { outcome: 'claimed', receipt: { ...base, leaseOwner: request.owner, leaseUntil: now + request.leaseMs } };
}

/** Moves a `dead-lettered` record back to `received`; `undefined` for any other state. */
export function reopenReceipt(current: Receipt, now: number): Receipt | undefined {
  if (current.state !== 'dead-lettered') return undefined;
  return { ...current, state: 'received', updatedAt: Math.max(now, current.updatedAt) };
}

/**
 * `mergeReceipt` for a batch, in order, over records a store has read into `records` (keyed by
 * `keyOf`): changed records are set back into the map, and each update's outcome is returned.
 * Stores that read a batch, decide in memory and write the changes (Redis, PostgreSQL) share it.
 */
export function applyReceiptUpdates(
  records: Map<string, Receipt>,
  updates: readonly ReceiptUpdate[],
  now: number,
  keyOf: (key: ReceiptKey) => string,
): RecordOutcome[] {
  return updates.map((update): RecordOutcome => {
    const key = keyOf(update);
    const current = records.get(key);
    const next = mergeReceipt(current, update, now);
    if (next === undefined) return 'ignored';
    records.set(key, next);
    return current === undefined ? 'created' : 'updated';
  });
}

/** `decideClaim` for a batch, in order, over `records` as {@link applyReceiptUpdates} does. */
export function applyReceiptClaims(
  records: Map<string, Receipt>,
  requests: readonly ReceiptClaim[],
  now: number,
  keyOf: (key: ReceiptKey) => string,
): ReceiptClaimResult[] {
  return requests.map((request) => {
    const key = keyOf(request);
    const result = decideClaim(records.get(key), request, now);
    if (result.outcome === 'claimed') records.set(key, result.receipt);
    return result;
  });
}

/** Page size rule shared by the stores' `list` methods. */
export function listPageLimit(limit: number | undefined): number {
  if (limit === undefined) return 100;
  if (!Number.isInteger(limit) || limit < 1) return 1;
  return Math.min(limit, 1000);
}

/** Opaque keyset cursor: base64url JSON of the sort key of the last item. */
export function encodeListCursor(values: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** Decodes `encodeListCursor`; throws `SB_BAD_REQUEST` when the cursor is malformed or has another length. */
export function decodeListCursor(cursor: string, length: number): (string | number)[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (Array.isArray(parsed) && parsed.length === length && parsed.every((v) => typeof v === 'string' || typeof v === 'number')) {
    return parsed;
  }
  throw new SwitchboardError('SB_BAD_REQUEST', { detail: 'malformed page cursor' });
}
