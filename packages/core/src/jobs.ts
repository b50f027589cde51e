import type { ProblemDetails } from './errors.js';
import { SwitchboardError } from './errors.js';

/**
 * The durable job store behind asynchronous operations (202 Accepted + status monitor).
 *
 * Semantics every store keeps (checked by `describeJobStoreConformance` in `@switchboard/testkit`):
 * - A job is `queued`, then `running` while a worker holds its lease, then `succeeded`, `failed` or
 *   `canceled` (finished). A finished job never changes status again.
 * - `version` starts at 1 and grows by one on every change a reader can see (status, progress,
 *   result, error, cancel request, callback state); `updatedAt` moves with it. Lease extensions by
 *   `heartbeat` are the worker's bookkeeping and change neither.
 * - A worker claims jobs with a lease. A running job whose lease expired is taken over by the next
 *   claim (its attempt counts); once `attempts` reached `maxAttempts` it is failed instead, with a
 *   reason, and a running job whose cancel was requested is canceled instead.
 * - A lease is fenced by `(workerId, attempt)`: after a takeover the old worker's heartbeat,
 *   progress, complete and fail answer `lost` and change nothing.
 * - At finish `expiresAt = finishedAt + retentionMs`. From then on `get` answers `gone` (410), also
 *   after `purge` deleted the job, until the tombstone itself is purged; an id the store never held
 *   answers `missing` (404).
 * - Store failures reject with `SwitchboardError('SB_STORE_UNAVAILABLE')`; a failed `create` leaves
 *   no job behind.
 */
export interface JobStore {
  /** Short engine name: `memory`, `sqlite`, `postgres`, `redis`. */
  readonly name: string;

  /**
   * Creates a job, or, with an `idempotencyKey` already used by the same owner, answers the job it
   * created (`existing`) — or `mismatch` when the request hash or the operation differ. With
   * `maxQueued`, answers `full` instead of creating when that many jobs of the operation are queued.
   */
  create(input: CreateJobInput): Promise<CreateJobResult>;

  /** The job, or whether it is `gone` (retention passed) or `missing` (never existed). */
  get(id: string): Promise<JobLookup>;

  /**
   * Claims due jobs for a worker: queued jobs whose `runAt` passed, and running jobs whose lease
   * expired (takeover), oldest first, at most `limit`. Each claimed job is `running` with
   * `attempts` increased by one. Atomic: concurrent claimers never receive the same job.
   */
  claim(options: ClaimOptions): Promise<readonly JobClaim[]>;

  /** Extends the lease to `now + leaseMs`; tells the worker whether to go on. */
  heartbeat(lease: JobLease, leaseMs: number): Promise<LeaseState>;

  /** Records progress (any JSON value) of a running job. */
  progress(lease: JobLease, progress: unknown): Promise<LeaseState>;

  /** Finishes the job as `succeeded` with `result` (any JSON value). A pending cancel request loses. */
  complete(lease: JobLease, result: unknown): Promise<SettleOutcome>;

  /**
   * Finishes the job as `failed` with `error`, or, with `retryDelayMs` and attempts left, queues it
   * again to run after that delay (`retrying`). A job whose cancel was requested becomes `canceled`.
   */
  fail(lease: JobLease, error: ProblemDetails, options?: FailOptions): Promise<SettleOutcome>;

  /**
   * Hands a running job back to the queue WITHOUT consuming an attempt (graceful shutdown: the
   * worker stops before the handler finished). The job is `queued` again, due now, with `attempts`
   * one lower and no lease (`released`); a job whose cancel was requested becomes `canceled`
   * instead. Fenced like `complete`: `lost` when the lease is no longer held.
   * Optional for compatibility with stores written before it; every Switchboard store has it.
   */
  release?(lease: JobLease): Promise<ReleaseOutcome>;

  /**
   * Cancels: a queued job is canceled at once; a running job gets a cancel request that its worker
   * sees through `heartbeat`/`progress`; a finished job is left alone (`finished`).
   */
  cancel(id: string): Promise<CancelResult>;

  /** Records the delivery state of the completion callback (webhook). `false` if the job is not there. */
  setCallback(id: string, callback: JobCallback): Promise<boolean>;

  /**
   * Resolves as soon as the job's version is above `sinceVersion` (at once if it already is), or
   * after `timeoutMs` with the job as it is then. Rejects with the signal's reason when aborted.
   * For long-polling and server-sent events.
   */
  waitForChange(id: string, sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<JobLookup>;

  /** How many jobs are queued and running (by status), for one operation or for all. */
  counts(operation?: string): Promise<JobCounts>;

  /** Deletes finished jobs whose `expiresAt` passed (keeping a tombstone) and old tombstones. Answers how many jobs it deleted. */
  purge(): Promise<number>;

  /** Releases connections and timers. Pending `waitForChange` calls resolve with the job as last read; later calls reject with `SB_CLOSED`. */
  close(): Promise<void>;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export type FinishedJobStatus = 'succeeded' | 'failed' | 'canceled';

export function isFinishedStatus(status: JobStatus): status is FinishedJobStatus {
  return status === 'succeeded' || status === 'failed' || status === 'canceled';
}

/** Delivery state of a completion callback (webhook); the store keeps it, the notifier fills it in. */
export interface JobCallback {
  readonly url: string;
  readonly state: 'pending' | 'delivered' | 'failed';
  readonly attempts: number;
  readonly lastAttemptAt?: number;
  readonly nextAttemptAt?: number;
  readonly lastError?: string;
}

/** A job as stored. Times are milliseconds since the epoch. */
export interface JobRecord {
  /** Unguessable (`newSecretId`). */
  readonly id: string;
  readonly operation: string;
  /** The submitting principal, or `null` when auth is off. */
  readonly owner: string | null;
  readonly status: JobStatus;
  /** The operation's input (JSON). */
  readonly input: unknown;
  /** The handler's output (JSON), once `succeeded`. */
  readonly result?: unknown;
  /** Why it `failed` or was `canceled`; while a retry is queued, the last attempt's error. */
  readonly error?: ProblemDetails;
  /** Last reported progress (JSON). */
  readonly progress?: unknown;
  readonly version: number;
  /** Claims so far (1 while the first run is on). */
  readonly attempts: number;
  readonly maxAttempts: number;
  /** Not claimed before this time. */
  readonly runAt: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  /** Set at finish: `finishedAt + retentionMs`. */
  readonly expiresAt?: number;
  readonly retentionMs: number;
  readonly cancelRequested: boolean;
  /** Worker holding (or last holding) the lease while running. */
  readonly leaseOwner?: string;
  readonly leaseExpiresAt?: number;
  readonly idempotencyKey?: string;
  readonly requestHash?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly callback?: JobCallback;
}

export interface CreateJobInput {
  readonly operation: string;
  readonly input: unknown;
  readonly owner?: string | null;
  /** Scoped by owner: the same owner and key never create a second job. */
  readonly idempotencyKey?: string;
  /** Hash of the request (e.g. SHA-256 of the body); compared when the key was seen before. */
  readonly requestHash?: string;
  /** Default 3. */
  readonly maxAttempts?: number;
  /** Not before this time. Default now. */
  readonly runAt?: number;
  /** How long the finished job stays readable. Default: the store's `retentionMs`. */
  readonly retentionMs?: number;
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** Completion webhook; stored with state `pending`. */
  readonly callbackUrl?: string;
  /** Bounded queue: answer `full` when this many jobs of the operation are already queued. */
  readonly maxQueued?: number;
  /**
   * Hand-off: a worker with a free slot asks for the new job at once. A store that supports it
   * stores the job as created and claimed by that worker in one write, answers `job` as accepted
   * (queued) and `claim` as a claim would; a store may ignore it (the job is then queued as
   * usual). Ignored for a job due later.
   */
  readonly claimFor?: { readonly workerId: string; readonly leaseMs: number };
}

export type CreateJobResult =
  | { readonly outcome: 'created'; readonly job: JobRecord; readonly claim?: JobClaim }
  | { readonly outcome: 'existing'; readonly job: JobRecord }
  | { readonly outcome: 'mismatch'; readonly jobId: string }
  | { readonly outcome: 'full' };

export type JobLookup =
  | { readonly state: 'found'; readonly job: JobRecord }
  | { readonly state: 'gone'; readonly id: string }
  | { readonly state: 'missing'; readonly id: string };

export interface ClaimOptions {
  /** Unique per worker (process + loop). */
  readonly workerId: string;
  readonly leaseMs: number;
  /** Most jobs to claim at once. Default 1. */
  readonly limit?: number;
  /** Only jobs of these operations. Default all. */
  readonly operations?: readonly string[];
  /** Most jobs of an operation running at once across all workers (live leases). */
  readonly concurrency?: Readonly<Record<string, number>>;
}

/** Fences a worker's writes: they apply only while this worker holds this attempt's lease. */
export interface JobLease {
  readonly jobId: string;
  readonly workerId: string;
  readonly attempt: number;
}

export interface JobClaim {
  readonly job: JobRecord;
  readonly lease: JobLease;
}

/** `held`: go on; `cancel-requested`: stop and call `fail` (the job becomes canceled); `lost`: stop, the job is not yours. */
export type LeaseState = 'held' | 'cancel-requested' | 'lost';

export type SettleOutcome = 'succeeded' | 'failed' | 'retrying' | 'canceled' | 'lost';

/** `released`: queued again, the attempt not counted; `canceled`: its cancel was requested; `lost`: not held. */
export type ReleaseOutcome = 'released' | 'canceled' | 'lost';

export interface FailOptions {
  /** Queue the job again after this delay when attempts are left. Without it, the job fails now. */
  readonly retryDelayMs?: number;
}

export type CancelResult =
  | { readonly outcome: 'canceled' | 'cancel-requested' | 'finished'; readonly job: JobRecord }
  | { readonly outcome: 'gone' | 'missing' };

export interface JobCounts {
  readonly queued: number;
  readonly running: number;
}

/** Options every job store takes. */
export interface JobStoreOptions {
  /** How long finished jobs stay readable, in ms. Default 24 hours. */
  readonly retentionMs?: number;
  /** How long `gone` is remembered after a job was purged, in ms. Default 7 days. */
  readonly tombstoneMs?: number;
  /** Time source (ms since the epoch). Default `Date.now`. Tests pass a fake clock. */
  readonly clock?: () => number;
}

export const jobStoreDefaults = {
  retentionMs: 24 * 60 * 60 * 1000,
  tombstoneMs: 7 * 24 * 60 * 60 * 1000,
  maxAttempts: 3,
} as const;

/** The problem stored on a job failed because its lease expired with no attempts left. */
export function leaseExpiredProblem(attempts: number): ProblemDetails {
  return new SwitchboardError('SB_JOB_FAILED', {
    detail: `The worker's lease expired on attempt ${attempts} of ${attempts}; the job was not run again`,
  }).toProblem();
}

/** The problem stored on a canceled job. */
export function canceledProblem(): ProblemDetails {
  return new SwitchboardError('SB_JOB_CANCELED', { detail: 'The job was canceled' }).toProblem();
}

/** Wraps a driver error as `SB_STORE_UNAVAILABLE`; Switchboard's own errors pass through. */
export function storeUnavailable(cause: unknown, detail = 'The job store could not be reached'): SwitchboardError {
  if (cause instanceof SwitchboardError) return cause;
  return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail, cause });
}

/**
 * In-process registry of callers waiting for a job to change. Stores wake it from their own change
 * feed (an emitter, LISTEN/NOTIFY, pub/sub, polling).
 */
export class JobWaiters {
  readonly #waiters = new Map<string, Set<() => void>>();
  #closed = false;

  get size(): number {
    return this.#waiters.size;
  }

  /** Wakes every waiter of `id`. */
  notify(id: string): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    this.#waiters.delete(id);
    for (const wake of set) wake();
  }

  /** Wakes every waiter (they re-read their job). */
  notifyAll(): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const set of all) for (const wake of set) wake();
  }

  /** Ends every wait now and later with the job as last read (the store is closing). */
  close(): void {
    this.#closed = true;
    this.notifyAll();
  }

  /**
   * Waits for a change of a job: registers before reading, so a change between the read and the
   * wait is never missed.
   */
  async waitForChange(
    id: string,
    sinceVersion: number,
    timeoutMs: number,
    read: () => Promise<JobLookup>,
    signal?: AbortSignal,
  ): Promise<JobLookup> {
    signal?.throwIfAborted();
    const deadline = performance.now() + Math.max(0, timeoutMs);
    for (;;) {
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      this.#add(id, wake);
      let current: JobLookup;
      try {
        current = await read();
      } catch (error) {
        this.#remove(id, wake);
        throw error;
      }
      const remaining = deadline - performance.now();
      if (this.#closed || current.state !== 'found' || current.job.version > sinceVersion || remaining <= 0) {
        this.#remove(id, wake);
        return current;
      }
      const outcome = await this.#race(woken, remaining, signal);
      this.#remove(id, wake);
      if (outcome === 'abort') throw signal?.reason;
      if (outcome === 'timeout') return this.#closed ? current : read();
      if (this.#closed) return current;
    }
  }

  #add(id: string, wake: () => void): void {
    let set = this.#waiters.get(id);
    if (!set) {
      set = new Set();
      this.#waiters.set(id, set);
    }
    set.add(wake);
  }

  #remove(id: string, wake: () => void): void {
    const set = this.#waiters.get(id);
    if (!set) return;
    set.delete(wake);
    if (set.size === 0) this.#waiters.delete(id);
  }

  #race(woken: Promise<void>, ms: number, signal: AbortSignal | undefined): Promise<'woken' | 'timeout' | 'abort'> {
    return new Promise((resolve) => {
      const done = (outcome: 'woken' | 'timeout' | 'abort') => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const onAbort = () => done('abort');
      const timer = setTimeout(() => done('timeout'), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) done('abort');
      void woken.then(() => done('woken'));
    });
  }
}
