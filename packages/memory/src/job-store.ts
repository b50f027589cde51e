import type {
  CancelResult,
  ClaimOptions,
  CreateJobInput,
  CreateJobResult,
  FailOptions,
  JobCallback,
  JobClaim,
  JobCounts,
  JobLease,
  JobLookup,
  JobRecord,
  JobStatus,
  JobStore,
  JobStoreOptions,
  LeaseState,
  ProblemDetails,
  ReleaseOutcome,
  SettleOutcome,
} from '@switchboard/core';
import { isFinishedStatus, SwitchboardError } from '@switchboard/core';
import { canceledProblem, JobWaiters, jobStoreDefaults, leaseExpiredProblem, newSecretId } from '@switchboard/core/kit';

/** A job as the memory store keeps it: JSON members as text, so readers never share objects with the store. */
interface Row {
  readonly id: string;
  readonly seq: number;
  readonly operation: string;
  readonly owner: string | null;
  status: JobStatus;
  readonly input: string;
  result: string | undefined;
  error: string | undefined;
  progress: string | undefined;
  version: number;
  attempts: number;
  readonly maxAttempts: number;
  runAt: number;
  readonly createdAt: number;
  updatedAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  expiresAt: number | undefined;
  readonly retentionMs: number;
  cancelRequested: boolean;
  leaseOwner: string | undefined;
  leaseExpiresAt: number | undefined;
  readonly idempotencyKey: string | undefined;
  readonly requestHash: string | undefined;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  callback: JobCallback | undefined;
}

export type MemoryJobStoreOptions = JobStoreOptions;

/**
 * The reference job store: one process, nothing survives a restart. Every other store behaves as
 * this one does (the conformance suite runs against all of them).
 */
export function createMemoryJobStore(options: MemoryJobStoreOptions = {}): JobStore {
  return new MemoryJobStore(options);
}

class MemoryJobStore implements JobStore {
  readonly name = 'memory';
  readonly #jobs = new Map<string, Row>();
  readonly #idempotency = new Map<string, string>();
  readonly #gone = new Map<string, number>();
  readonly #waiters = new JobWaiters();
  readonly #clock: () => number;
  readonly #retentionMs: number;
  readonly #tombstoneMs: number;
  #seq = 0;
  #closed = false;

  constructor(options: MemoryJobStoreOptions) {
    this.#clock = options.clock ?? Date.now;
    this.#retentionMs = options.retentionMs ?? jobStoreDefaults.retentionMs;
    this.#tombstoneMs = options.tombstoneMs ?? jobStoreDefaults.tombstoneMs;
  }

  async create(input: CreateJobInput): Promise<CreateJobResult> {
    this.#open();
    const now = this.#clock();
    const owner = input.owner ?? null;
    const scope = input.idempotencyKey === undefined ? undefined : JSON.stringify([owner, input.idempotencyKey]);
    if (scope !== undefined) {
      const existingId = this.#idempotency.get(scope);
      const existing = existingId === undefined ? undefined : this.#jobs.get(existingId);
      if (existing && !this.#expired(existing, now)) {
        const same = existing.operation === input.operation && (existing.requestHash ?? '') === (input.requestHash ?? '');
        return same ? { outcome: 'existing', job: toRecord(existing) } : { outcome: 'mismatch', jobId: existing.id };
      }
      if (existing) this.#bury(existing, now);
    }
    if (input.maxQueued !== undefined && this.#count(input.operation, 'queued') >= input.maxQueued) return { outcome: 'full' };
    const row: Row = {
      id: newSecretId(),
      seq: ++this.#seq,
      operation: input.operation,
      owner,
      status: 'queued',
      input: JSON.stringify(input.input ?? null),
      result: undefined,
      error: undefined,
      progress: undefined,
      version: 1,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? jobStoreDefaults.maxAttempts,
      runAt: input.runAt ?? now,
      createdAt: now,
      updatedAt: now,
      startedAt: undefined,
      finishedAt: undefined,
      expiresAt: undefined,
      retentionMs: input.retentionMs ?? this.#retentionMs,
      cancelRequested: false,
      leaseOwner: undefined,
      leaseExpiresAt: undefined,
      idempotencyKey: input.idempotencyKey,
      requestHash: input.requestHash,
      traceparent: input.traceparent,
      tracestate: input.tracestate,
      callback: input.callbackUrl === undefined ? undefined : { url: input.callbackUrl, state: 'pending', attempts: 0 },
    };
    this.#jobs.set(row.id, row);
    if (scope !== undefined) this.#idempotency.set(scope, row.id);
    return { outcome: 'created', job: toRecord(row) };
  }

  async get(id: string): Promise<JobLookup> {
    this.#open();
    return this.#lookup(id, this.#clock());
  }

  async claim(options: ClaimOptions): Promise<readonly JobClaim[]> {
    this.#open();
    const now = this.#clock();
    const limit = options.limit ?? 1;
    const operations = options.operations === undefined ? undefined : new Set(options.operations);
    const allowance = new Map<string, number>();
    for (const [operation, max] of Object.entries(options.concurrency ?? {})) {
      let live = 0;
      for (const row of this.#jobs.values()) {
        if (row.operation === operation && row.status === 'running' && (row.leaseExpiresAt ?? 0) > now) live++;
      }
      allowance.set(operation, max - live);
    }
    const takeovers: Row[] = [];
    const queued: Row[] = [];
    for (const row of this.#jobs.values()) {
      if (operations && !operations.has(row.operation)) continue;
      if (row.status === 'running' && (row.leaseExpiresAt ?? 0) <= now) {
        if (row.cancelRequested) this.#finish(row, 'canceled', now, { error: canceledProblem() });
        else if (row.attempts >= row.maxAttempts) this.#finish(row, 'failed', now, { error: leaseExpiredProblem(row.maxAttempts) });
        else takeovers.push(row);
      } else if (row.status === 'queued' && row.runAt <= now) {
        queued.push(row);
      }
    }
    queued.sort((a, b) => a.runAt - b.runAt || a.seq - b.seq);
    const claims: JobClaim[] = [];
    for (const row of [...takeovers, ...queued]) {
      if (claims.length >= limit) break;
      const left = allowance.get(row.operation);
      if (left !== undefined) {
        if (left <= 0) continue;
        allowance.set(row.operation, left - 1);
      }
      row.status = 'running';
      row.attempts += 1;
      row.leaseOwner = options.workerId;
      row.leaseExpiresAt = now + options.leaseMs;
      row.startedAt ??= now;
      this.#touch(row, now);
      claims.push({ job: toRecord(row), lease: { jobId: row.id, workerId: options.workerId, attempt: row.attempts } });
    }
    return claims;
  }

  async heartbeat(lease: JobLease, leaseMs: number): Promise<LeaseState> {
    this.#open();
    const row = this.#held(lease);
    if (!row) return 'lost';
    row.leaseExpiresAt = this.#clock() + leaseMs;
    return row.cancelRequested ? 'cancel-requested' : 'held';
  }

  async progress(lease: JobLease, progress: unknown): Promise<LeaseState> {
    this.#open();
    const row = this.#held(lease);
    if (!row) return 'lost';
    row.progress = JSON.stringify(progress ?? null);
    this.#touch(row, this.#clock());
    return row.cancelRequested ? 'cancel-requested' : 'held';
  }

  async complete(lease: JobLease, result: unknown): Promise<SettleOutcome> {
    this.#open();
    const row = this.#held(lease);
    if (!row) return 'lost';
    this.#finish(row, 'succeeded', this.#clock(), { result: JSON.stringify(result ?? null) });
    return 'succeeded';
  }

  async fail(lease: JobLease, error: ProblemDetails, options: FailOptions = {}): Promise<SettleOutcome> {
    this.#open();
    const row = this.#held(lease);
    if (!row) return 'lost';
    const now = this.#clock();
    if (row.cancelRequested) {
      this.#finish(row, 'canceled', now, { error: canceledProblem() });
      return 'canceled';
    }
    if (options.retryDelayMs !== undefined && row.attempts < row.maxAttempts) {
      row.status = 'queued';
      row.runAt = now + options.retryDelayMs;
      row.error = JSON.stringify(error);
      row.leaseOwner = undefined;
      row.leaseExpiresAt = undefined;
      this.#touch(row, now);
      return 'retrying';
    }
    this.#finish(row, 'failed', now, { error });
    return 'failed';
  }

  async release(lease: JobLease): Promise<ReleaseOutcome> {
    this.#open();
    const row = this.#held(lease);
    if (!row) return 'lost';
    const now = this.#clock();
    if (row.cancelRequested) {
      this.#finish(row, 'canceled', now, { error: canceledProblem() });
      return 'canceled';
    }
    row.status = 'queued';
    row.runAt = now;
    row.attempts -= 1;
    if (row.attempts === 0) row.startedAt = undefined;
    row.leaseOwner = undefined;
    row.leaseExpiresAt = undefined;
    this.#touch(row, now);
    return 'released';
  }

  async cancel(id: string): Promise<CancelResult> {
    this.#open();
    const now = this.#clock();
    const lookup = this.#lookup(id, now);
    if (lookup.state !== 'found') return { outcome: lookup.state };
    const row = this.#jobs.get(id)!;
    if (isFinishedStatus(row.status)) return { outcome: 'finished', job: lookup.job };
    if (row.status === 'queued') {
      this.#finish(row, 'canceled', now, { error: canceledProblem() });
      return { outcome: 'canceled', job: toRecord(row) };
    }
    if (!row.cancelRequested) {
      row.cancelRequested = true;
      this.#touch(row, now);
    }
    return { outcome: 'cancel-requested', job: toRecord(row) };
  }

  async setCallback(id: string, callback: JobCallback): Promise<boolean> {
    this.#open();
    const row = this.#jobs.get(id);
    if (!row) return false;
    row.callback = { ...callback };
    this.#touch(row, this.#clock());
    return true;
  }

  waitForChange(id: string, sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<JobLookup> {
    this.#open();
    return this.#waiters.waitForChange(id, sinceVersion, timeoutMs, async () => this.#lookup(id, this.#clock()), signal);
  }

  async counts(operation?: string): Promise<JobCounts> {
    this.#open();
    return { queued: this.#count(operation, 'queued'), running: this.#count(operation, 'running') };
  }

  async purge(): Promise<number> {
    this.#open();
    const now = this.#clock();
    let purged = 0;
    for (const row of this.#jobs.values()) {
      if (this.#expired(row, now)) {
        this.#bury(row, now);
        purged++;
      }
    }
    for (const [id, goneAt] of this.#gone) {
      if (goneAt + this.#tombstoneMs <= now) this.#gone.delete(id);
    }
    return purged;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#waiters.close();
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'The memory job store was closed' });
  }

  #lookup(id: string, now: number): JobLookup {
    const row = this.#jobs.get(id);
    if (row) return this.#expired(row, now) ? { state: 'gone', id } : { state: 'found', job: toRecord(row) };
    return this.#gone.has(id) ? { state: 'gone', id } : { state: 'missing', id };
  }

  #expired(row: Row, now: number): boolean {
    return row.expiresAt !== undefined && row.expiresAt <= now;
  }

  #bury(row: Row, now: number): void {
    this.#jobs.delete(row.id);
    if (row.idempotencyKey !== undefined) {
      const scope = JSON.stringify([row.owner, row.idempotencyKey]);
      if (this.#idempotency.get(scope) === row.id) this.#idempotency.delete(scope);
    }
    this.#gone.set(row.id, now);
  }

  #held(lease: JobLease): Row | undefined {
    const row = this.#jobs.get(lease.jobId);
    if (row?.status !== 'running' || row.leaseOwner !== lease.workerId || row.attempts !== lease.attempt) return undefined;
    return row;
  }

  #count(operation: string | undefined, status: JobStatus): number {
    let n = 0;
    for (const row of this.#jobs.values()) if (row.status === status && (operation === undefined || row.operation === operation)) n++;
    return n;
  }

  #finish(row: Row, status: JobStatus, now: number, outcome: { result?: string; error?: ProblemDetails }): void {
    row.status = status;
    row.finishedAt = now;
    row.expiresAt = now + row.retentionMs;
    if (outcome.result !== undefined) row.result = outcome.result;
    if (outcome.error !== undefined) row.error = JSON.stringify(outcome.error);
    this.#touch(row, now);
  }

  #touch(row: Row, now: number): void {
    row.version += 1;
    row.updatedAt = now;
    this.#waiters.notify(row.id);
  }
}

function toRecord(row: Row): JobRecord {
  return {
    id: row.id,
    operation: row.operation,
    owner: row.owner,
    status: row.status,
    input: JSON.parse(row.input),
    ...(row.result === undefined ? {} : { result: JSON.parse(row.result) }),
    ...(row.error === undefined ? {} : { error: JSON.parse(row.error) as ProblemDetails }),
    ...(row.progress === undefined ? {} : { progress: JSON.parse(row.progress) }),
    version: row.version,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    runAt: row.runAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    ...(row.startedAt === undefined ? {} : { startedAt: row.startedAt }),
    ...(row.finishedAt === undefined ? {} : { finishedAt: row.finishedAt }),
    ...(row.expiresAt === undefined ? {} : { expiresAt: row.expiresAt }),
    retentionMs: row.retentionMs,
    cancelRequested: row.cancelRequested,
    ...(row.leaseOwner === undefined ? {} : { leaseOwner: row.leaseOwner }),
    ...(row.leaseExpiresAt === undefined ? {} : { leaseExpiresAt: row.leaseExpiresAt }),
    ...(row.idempotencyKey === undefined ? {} : { idempotencyKey: row.idempotencyKey }),
    ...(row.requestHash === undefined ? {} : { requestHash: row.requestHash }),
    ...(row.traceparent === undefined ? {} : { traceparent: row.traceparent }),
    ...(row.tracestate === undefined ? {} : { tracestate: row.tracestate }),
    ...(row.callback === undefined ? {} : { callback: { ...row.callback } }),
  };
}
