import type { Headers } from './broker.js';
import type { ProblemDetails } from './errors.js';
import type { ListPage } from './receipts.js';

/**
 * Dead letters: messages a consumer group gave up on, kept with their exact bytes, the reason and
 * the history of attempts, so an operator can list, inspect, and replay them.
 *
 * The store does not publish. Replay is done by the messaging layer with a broker:
 * 1. `take({ owner, leaseMs, ... })` atomically claims entries (status `pending` → `replaying`, with a
 *    lease) so two replayers never publish the same entry twice while the lease holds;
 * 2. the replayer republishes `headers` + `body` unchanged (and reopens the receipts of the group);
 * 3. `markReplayed(ids, owner)` records success (status `replayed`), or `release(ids, owner)` gives
 *    the entries back as `pending`. A replayer that dies leaves a lease that runs out; the entries
 *    are then taken again. The lease is the only protection: a replayer that publishes after its
 *    lease ran out can duplicate a publish, which the receivers' inbox absorbs.
 *
 * `add` is idempotent per (group, source, MessageId) while the entry is not `replayed` (a consumer that
 * crashes between `add` and ack adds the same message again): the existing entry is returned and its
 * attempt history extended with attempts it did not have. After a replay, a new failure adds a new
 * entry.
 *
 * All times are milliseconds since the Unix epoch.
 */

/** Why a message was dead-lettered. The listed codes are the ones Switchboard uses; others may be added. */
export type DeadLetterReason =
  /** The handler failed on every allowed attempt. */
  | 'max-attempts'
  /** The handler threw `PermanentError`. */
  | 'permanent'
  /** The data failed the contract's schema (`SB_MESSAGE_INVALID`). */
  | 'invalid'
  /** The bytes are not a CloudEvents 1.0 event (`SB_NOT_CLOUDEVENT`). */
  | 'not-cloudevent'
  /** No contract entry or handler for the type (`SB_UNKNOWN_TYPE`). */
  | 'unknown-type'
  /** The claim-checked attachment is missing or does not match its hash. */
  | 'claim-check'
  /** A store refused the message for good (a permanent store error, e.g. a value it cannot hold). */
  | 'store'
  /** The message's signature is missing or does not verify. */
  | 'signature'
  | (string & {});

export type DeadLetterStatus =
  /** Waiting; can be taken for replay. */
  | 'pending'
  /** Taken by a replayer whose lease has not run out. */
  | 'replaying'
  /** Republished; kept for the record until removed or purged. */
  | 'replayed';

export interface DeadLetterAttempt {
  /** 1-based attempt number. */
  readonly attempt: number;
  readonly at: number;
  readonly error: ProblemDetails;
}

/** What the messaging layer hands to `add`. */
export interface NewDeadLetter {
  /**
   * The CloudEvent `id`. For bytes that are not a CloudEvent: the transport id, or (lacking one) a
   * `sha256:` digest of the headers and body, so a redelivery adds to the same entry.
   */
  readonly messageId: string;
  /** The CloudEvent `source`; `''` for bytes that are not a CloudEvent. */
  readonly source: string;
  readonly topic: string;
  readonly group: string;
  /** CloudEvents `type`, when the message could be parsed. */
  readonly type?: string;
  /** Transport headers exactly as received. */
  readonly headers: Headers;
  /** Body bytes exactly as received. */
  readonly body: Uint8Array;
  /** Ordering key, when the message had one. */
  readonly key?: string;
  readonly reason: DeadLetterReason;
  readonly detail?: string;
  readonly attempts: readonly DeadLetterAttempt[];
  /** Defaults to the store's clock. */
  readonly deadLetteredAt?: number;
}

/** A dead letter without its bytes (what `list` returns). */
export interface DeadLetterSummary {
  /** The store's id of this entry (not the MessageId). */
  readonly id: string;
  readonly messageId: string;
  /** CloudEvent `source` (`''` for bytes that are not a CloudEvent). */
  readonly source: string;
  readonly topic: string;
  readonly group: string;
  readonly type?: string;
  readonly key?: string;
  readonly reason: DeadLetterReason;
  readonly detail?: string;
  readonly attempts: readonly DeadLetterAttempt[];
  readonly deadLetteredAt: number;
  readonly status: DeadLetterStatus;
  /** How many times the entry was replayed. */
  readonly replayCount: number;
  readonly replayedAt?: number;
  /** While `replaying`: who holds the lease, and until when. */
  readonly replayOwner?: string;
  readonly replayLeaseUntil?: number;
  /** Body size in bytes. */
  readonly size: number;
}

export interface DeadLetter extends DeadLetterSummary {
  readonly headers: Headers;
  readonly body: Uint8Array;
}

export interface DeadLetterFilter {
  readonly topic?: string;
  readonly group?: string;
  readonly type?: string;
  readonly reason?: DeadLetterReason;
  readonly messageId?: string;
  readonly source?: string;
  /** Matched against the effective status (a `replaying` entry whose lease ran out counts as `pending`). */
  readonly status?: DeadLetterStatus;
  /** Inclusive lower bound on `deadLetteredAt`. */
  readonly from?: number;
  /** Exclusive upper bound on `deadLetteredAt`. */
  readonly to?: number;
}

export interface DeadLetterListOptions extends DeadLetterFilter {
  /** Page size; default 100, at most 1000. */
  readonly limit?: number;
  readonly cursor?: string;
}

export interface DeadLetterTakeOptions extends Omit<DeadLetterFilter, 'status'> {
  /** Take exactly these entries (single replay); combined with the other filters. */
  readonly ids?: readonly string[];
  /** Identifies the replayer; `markReplayed` and `release` must pass the same owner. */
  readonly owner: string;
  readonly leaseMs: number;
  /** Most entries taken; default 100, at most 1000. Call again for the next batch. */
  readonly limit?: number;
}

/**
 * The dead-letter store. Order everywhere is `deadLetteredAt`, then id. Safe for concurrent use by
 * many workers and processes (where the engine is shared).
 */
export interface DeadLetterStore {
  /** Adds an entry (idempotent per group + source + MessageId while not replayed; see above). */
  add(entry: NewDeadLetter): Promise<DeadLetter>;
  /** Adds many entries in one transaction / round trip, in order. */
  addBatch(entries: readonly NewDeadLetter[]): Promise<DeadLetter[]>;
  /** The entry with its bytes, or `undefined`. */
  get(id: string): Promise<DeadLetter | undefined>;
  /** Entries without their bytes, filtered and paged. */
  list(options?: DeadLetterListOptions): Promise<ListPage<DeadLetterSummary>>;
  /**
   * Atomically claims up to `limit` pending entries matching the filter for replay (also entries whose
   * replay lease ran out) and returns them with their bytes. Already replayed entries are never taken.
   */
  take(options: DeadLetterTakeOptions): Promise<DeadLetter[]>;
  /** Marks entries taken by `owner` as replayed. Returns how many were marked. */
  markReplayed(ids: readonly string[], owner: string): Promise<number>;
  /** Gives entries taken by `owner` back as pending. Returns how many were released. */
  release(ids: readonly string[], owner: string): Promise<number>;
  /** Deletes entries. Returns how many existed. */
  remove(ids: readonly string[]): Promise<number>;
  /** Deletes entries dead-lettered before `olderThan` (only replayed ones when `onlyReplayed`). */
  purge(olderThan: number, options?: { readonly onlyReplayed?: boolean }): Promise<number>;
  close(): Promise<void>;
}

/** The effective status of an entry at `now` (an expired replay lease counts as pending). */
export function deadLetterStatusAt(entry: Pick<DeadLetterSummary, 'status' | 'replayLeaseUntil'>, now: number): DeadLetterStatus {
  if (entry.status === 'replaying' && (entry.replayLeaseUntil ?? 0) <= now) return 'pending';
  return entry.status;
}

/** Attempts of `incoming` whose attempt number `existing` does not have, appended in attempt order. */
export function mergeAttempts(existing: readonly DeadLetterAttempt[], incoming: readonly DeadLetterAttempt[]): DeadLetterAttempt[] {
  const known = new Set(existing.map((a) => a.attempt));
  const merged = [...existing];
  for (const attempt of incoming) {
    if (!known.has(attempt.attempt)) {
      known.add(attempt.attempt);
      merged.push(attempt);
    }
  }
  return merged.sort((a, b) => a.attempt - b.attempt);
}
