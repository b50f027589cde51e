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
import { SwitchboardError } from '@switchboard/core';
import { canceledProblem, JobWaiters, jobStoreDefaults, leaseExpiredProblem, newSecretId, storeUnavailable } from '@switchboard/core/kit';
import Database from 'better-sqlite3';
import type { ItemOutcome } from './job-store-batch.js';
import { TickBatch } from './job-store-batch.js';

export interface SqliteJobStoreOptions extends JobStoreOptions {
  /** Database file; opened in WAL mode with a busy timeout. Several processes may share it. */
  readonly path?: string;
  /** An open database instead of `path`; the caller sets its pragmas and closes it. */
  readonly database?: Database.Database;
  /** Table name (letters, digits, `_`). Default `switchboard_jobs`; `<table>_gone` holds tombstones, `<table>_backlog` queued counts. */
  readonly table?: string;
  /** How often a waiting `waitForChange` looks for commits of other processes, in ms. Default 100. */
  readonly pollIntervalMs?: number;
  /** How long a write waits for another process's lock, in ms. Default 5 000. */
  readonly busyTimeoutMs?: number;
}

/** How many expired leases one claim settles at most (failed or canceled instead of re-run). */
const SWEEP_LIMIT = 100;

interface JobRow {
  seq: number;
  id: string;
  operation: string;
  owner: string | null;
  status: JobStatus;
  input: string;
  result: string | null;
  error: string | null;
  progress: string | null;
  version: number;
  attempts: number;
  max_attempts: number;
  run_at: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  expires_at: number | null;
  retention_ms: number;
  cancel_requested: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  idempotency_key: string | null;
  idempotency_scope: string | null;
  request_hash: string | null;
  traceparent: string | null;
  tracestate: string | null;
  callback: string | null;
}

function schema(t: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${t} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  operation TEXT NOT NULL,
  owner TEXT,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  result TEXT,
  error TEXT,
  progress TEXT,
  version INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  expires_at INTEGER,
  retention_ms INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  idempotency_key TEXT,
  idempotency_scope TEXT,
  request_hash TEXT,
  traceparent TEXT,
  tracestate TEXT,
  callback TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ${t}_scope ON ${t} (idempotency_scope) WHERE idempotency_scope IS NOT NULL;
CREATE INDEX IF NOT EXISTS ${t}_queued ON ${t} (run_at, seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS ${t}_running ON ${t} (lease_expires_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS ${t}_active ON ${t} (operation, status) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS ${t}_expires ON ${t} (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${t}_gone (id TEXT PRIMARY KEY, gone_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${t}_gone_at ON ${t}_gone (gone_at);
${queuedCounter(t)}`;
}

/**
 * Queued jobs per operation, kept by triggers in the transaction that changes a job, so the
 * bounded-queue check of `create` reads one row instead of counting the backlog.
 */
function queuedCounter(t: string): string {
  const add = (operation: string, delta: string) =>
    `INSERT INTO ${t}_backlog (operation, n) VALUES (${operation}, ${delta}) ON CONFLICT (operation) DO UPDATE SET n = n + excluded.n;`;
  return `
CREATE TABLE IF NOT EXISTS ${t}_backlog (operation TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS ${t}_backlog_insert AFTER INSERT ON ${t} WHEN new.status = 'queued'
BEGIN ${add('new.operation', '1')} END;
CREATE TRIGGER IF NOT EXISTS ${t}_backlog_update AFTER UPDATE OF status ON ${t}
  WHEN (old.status = 'queued') <> (new.status = 'queued')
BEGIN ${add('new.operation', "CASE WHEN new.status = 'queued' THEN 1 ELSE -1 END")} END;
CREATE TRIGGER IF NOT EXISTS ${t}_backlog_delete AFTER DELETE ON ${t} WHEN old.status = 'queued'
BEGIN ${add('old.operation', '-1')} END;`;
}

/**
 * Creates the tables in one `BEGIN IMMEDIATE` transaction (processes may open the file together).
 * A table made before the queued counter existed gets its counter filled from the rows.
 */
function createSchema(db: Database.Database, t: string): void {
  db.transaction(() => {
    const hasCounter = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(`${t}_backlog`) !== undefined;
    db.exec(schema(t));
    if (!hasCounter) {
      db.exec(`INSERT INTO ${t}_backlog (operation, n) SELECT operation, count(*) FROM ${t} WHERE status = 'queued' GROUP BY operation`);
    }
  }).immediate();
}

/**
 * The embedded job store: one SQLite file in WAL mode, shared by the processes of one host. Claims
 * run in `BEGIN IMMEDIATE` transactions, so they are atomic across processes; a job survives a
 * crash of any process once `create` resolved.
 */
export function createSqliteJobStore(options: SqliteJobStoreOptions): JobStore {
  return new SqliteJobStore(options);
}

function tableName(table: string | undefined): string {
  const name = table ?? 'switchboard_jobs';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Invalid job table name "${name}"` });
  }
  return name;
}

type Held = { id: string; worker: string; attempt: number };

function prepareStatements(db: Database.Database, t: string) {
  // `@ops` and `@full` are JSON arrays of names: a substring test of the quoted name is cheaper than json_each.
  const opsFilter = '(@ops IS NULL OR instr(@ops, json_quote(operation)) > 0)';
  const held = `id = @id AND status = 'running' AND lease_owner = @worker AND attempts = @attempt`;
  return {
    insert: db.prepare<unknown[]>(
      `INSERT INTO ${t} (id, operation, owner, status, input, version, attempts, max_attempts, run_at, created_at, updated_at,
        retention_ms, idempotency_key, idempotency_scope, request_hash, traceparent, tracestate, callback)
       VALUES (?, ?, ?, 'queued', ?, 1, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertClaimed: db.prepare<unknown[]>(
      `INSERT INTO ${t} (id, operation, owner, status, input, version, attempts, max_attempts, run_at, created_at, updated_at,
        started_at, retention_ms, lease_owner, lease_expires_at, idempotency_key, idempotency_scope, request_hash, traceparent,
        tracestate, callback)
       VALUES (?, ?, ?, 'running', ?, 2, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    byId: db.prepare<[string], JobRow>(`SELECT * FROM ${t} WHERE id = ?`),
    byScope: db.prepare<[string], JobRow>(`SELECT * FROM ${t} WHERE idempotency_scope = ?`),
    isGone: db.prepare<[string], { one: number }>(`SELECT 1 AS one FROM ${t}_gone WHERE id = ?`),
    bury: db.prepare<[string, number]>(`INSERT OR REPLACE INTO ${t}_gone (id, gone_at) VALUES (?, ?)`),
    delete: db.prepare<[number]>(`DELETE FROM ${t} WHERE seq = ?`),
    queuedCount: db.prepare<[string], { n: number }>(`SELECT coalesce((SELECT n FROM ${t}_backlog WHERE operation = ?), 0) AS n`),
    countStatus: db.prepare<[string, string], { n: number }>(`SELECT count(*) AS n FROM ${t} WHERE operation = ? AND status = ?`),
    countAll: db.prepare<[], { status: string; n: number }>(
      `SELECT status, count(*) AS n FROM ${t} WHERE status IN ('queued', 'running') GROUP BY status`,
    ),
    countLive: db.prepare<[string, number], { n: number }>(
      `SELECT count(*) AS n FROM ${t} WHERE operation = ? AND status = 'running' AND lease_expires_at > ?`,
    ),
    expiredLeases: db.prepare<[{ now: number; limit: number; ops: string | null }], JobRow>(
      `SELECT * FROM ${t} WHERE status = 'running' AND lease_expires_at <= @now AND ${opsFilter} ORDER BY lease_expires_at LIMIT @limit`,
    ),
    due: db.prepare<[{ now: number; limit: number; ops: string | null; full: string | null }], JobRow>(
      `SELECT * FROM ${t} WHERE status = 'queued' AND run_at <= @now AND ${opsFilter}
         AND (@full IS NULL OR instr(@full, json_quote(operation)) = 0)
       ORDER BY run_at, seq LIMIT @limit`,
    ),
    take: db.prepare<[{ worker: string; now: number; leaseMs: number; seq: number }]>(
      `UPDATE ${t} SET status = 'running', attempts = attempts + 1, lease_owner = @worker, lease_expires_at = @now + @leaseMs,
         started_at = coalesce(started_at, @now), version = version + 1, updated_at = @now
       WHERE seq = @seq`,
    ),
    finish: db.prepare<[{ status: string; error: string | null; now: number; seq: number }]>(
      `UPDATE ${t} SET status = @status, error = coalesce(@error, error), finished_at = @now,
         expires_at = @now + retention_ms, version = version + 1, updated_at = @now
       WHERE seq = @seq`,
    ),
    heartbeat: db.prepare<[Held & { until: number }], { cancel_requested: number }>(
      `UPDATE ${t} SET lease_expires_at = @until WHERE ${held} RETURNING cancel_requested`,
    ),
    progress: db.prepare<[Held & { progress: string; now: number }], { cancel_requested: number }>(
      `UPDATE ${t} SET progress = @progress, version = version + 1, updated_at = @now WHERE ${held} RETURNING cancel_requested`,
    ),
    complete: db.prepare<[Held & { result: string; now: number }], { id: string }>(
      `UPDATE ${t} SET status = 'succeeded', result = @result, finished_at = @now, expires_at = @now + retention_ms,
         version = version + 1, updated_at = @now
       WHERE ${held} RETURNING id`,
    ),
    held: db.prepare<[Held], JobRow>(`SELECT * FROM ${t} WHERE ${held}`),
    release: db.prepare<[{ now: number; seq: number }]>(
      `UPDATE ${t} SET status = 'queued', run_at = @now, attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
         started_at = CASE WHEN attempts - 1 = 0 THEN NULL ELSE started_at END, version = version + 1, updated_at = @now
       WHERE seq = @seq`,
    ),
    requeue: db.prepare<[{ runAt: number; error: string; now: number; seq: number }]>(
      `UPDATE ${t} SET status = 'queued', run_at = @runAt, error = @error, lease_owner = NULL, lease_expires_at = NULL,
         version = version + 1, updated_at = @now
       WHERE seq = @seq`,
    ),
    requestCancel: db.prepare<[number, number]>(
      `UPDATE ${t} SET cancel_requested = 1, version = version + 1, updated_at = ? WHERE seq = ?`,
    ),
    setCallback: db.prepare<[string, number, string], { id: string }>(
      `UPDATE ${t} SET callback = ?, version = version + 1, updated_at = ? WHERE id = ? RETURNING id`,
    ),
    buryExpired: db.prepare<[number, number]>(
      `INSERT OR REPLACE INTO ${t}_gone (id, gone_at) SELECT id, ? FROM ${t} WHERE expires_at <= ?`,
    ),
    deleteExpired: db.prepare<[number]>(`DELETE FROM ${t} WHERE expires_at <= ?`),
    deleteTombstones: db.prepare<[number]>(`DELETE FROM ${t}_gone WHERE gone_at <= ?`),
  };
}

class SqliteJobStore implements JobStore {
  readonly name = 'sqlite';
  readonly #db: Database.Database;
  readonly #ownsDb: boolean;
  readonly #sql: ReturnType<typeof prepareStatements>;
  readonly #waiters = new JobWaiters();
  readonly #clock: () => number;
  readonly #retentionMs: number;
  readonly #tombstoneMs: number;
  readonly #pollIntervalMs: number;
  readonly #creates = new TickBatch<CreateJobInput, CreateJobResult>((inputs) => this.#createBatch(inputs), {
    eager: true,
  });
  readonly #completes = new TickBatch<{ lease: JobLease; result: string }, SettleOutcome>((items) => this.#completeBatch(items));
  #poller: NodeJS.Timeout | undefined;
  #dataVersion = 0;
  #closed = false;

  constructor(options: SqliteJobStoreOptions) {
    const table = tableName(options.table);
    this.#clock = options.clock ?? Date.now;
    this.#retentionMs = options.retentionMs ?? jobStoreDefaults.retentionMs;
    this.#tombstoneMs = options.tombstoneMs ?? jobStoreDefaults.tombstoneMs;
    this.#pollIntervalMs = options.pollIntervalMs ?? 100;
    try {
      if (options.database) {
        this.#db = options.database;
        this.#ownsDb = false;
      } else if (options.path !== undefined) {
        this.#db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5_000 });
        this.#ownsDb = true;
        this.#db.pragma('journal_mode = WAL');
        this.#db.pragma('synchronous = NORMAL');
      } else {
        throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'createSqliteJobStore needs `path` or `database`' });
      }
      createSchema(this.#db, table);
      this.#sql = prepareStatements(this.#db, table);
    } catch (error) {
      throw storeUnavailable(error, 'The SQLite job store could not be opened');
    }
  }

  /**
   * Creates arriving in the same turn of the event loop share one `BEGIN IMMEDIATE` transaction
   * (group commit); each still gets its own answer, with its own idempotency and queue checks.
   */
  create(input: CreateJobInput): Promise<CreateJobResult> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#creates.add(input);
  }

  #createBatch(inputs: readonly CreateJobInput[]): ItemOutcome<CreateJobResult>[] {
    if (this.#closed) throw closedError();
    const now = this.#clock();
    let outcomes: ItemOutcome<CreateJobResult>[];
    try {
      outcomes = this.#db
        .transaction(() =>
          inputs.map((input): ItemOutcome<CreateJobResult> => {
            try {
              const scoped = input.idempotencyKey !== undefined;
              // A job with a key may bury an expired one before it inserts: a savepoint keeps that together.
              const value = scoped ? this.#db.transaction(() => this.#createOne(input, now))() : this.#createOne(input, now);
              return { ok: true, value };
            } catch (error) {
              return { ok: false, error: storeUnavailable(error, 'The SQLite job store failed') };
            }
          }),
        )
        .immediate();
    } catch (error) {
      throw storeUnavailable(error, 'The SQLite job store failed');
    }
    return outcomes;
  }

  #createOne(input: CreateJobInput, now: number): CreateJobResult {
    const owner = input.owner ?? null;
    const scope = input.idempotencyKey === undefined ? null : JSON.stringify([owner, input.idempotencyKey]);
    if (scope !== null) {
      const existing = this.#sql.byScope.get(scope);
      if (existing && !expired(existing, now)) {
        const same = existing.operation === input.operation && (existing.request_hash ?? '') === (input.requestHash ?? '');
        return same ? { outcome: 'existing', job: toRecord(existing) } : { outcome: 'mismatch', jobId: existing.id };
      }
      if (existing) this.#bury(existing, now);
    }
    if (input.maxQueued !== undefined && this.#sql.queuedCount.get(input.operation)!.n >= input.maxQueued) return { outcome: 'full' };
    const text = JSON.stringify(input.input ?? null);
    const callback: JobCallback | undefined =
      input.callbackUrl === undefined ? undefined : { url: input.callbackUrl, state: 'pending', attempts: 0 };
    const job: JobRecord = {
      id: newSecretId(),
      operation: input.operation,
      owner,
      status: 'queued',
      // The caller gets its own copy, as from any later read.
      input: JSON.parse(text),
      version: 1,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? jobStoreDefaults.maxAttempts,
      runAt: input.runAt ?? now,
      createdAt: now,
      updatedAt: now,
      retentionMs: input.retentionMs ?? this.#retentionMs,
      cancelRequested: false,
      ...(input.idempotencyKey === undefined ? {} : { idempotencyKey: input.idempotencyKey }),
      ...(input.requestHash === undefined ? {} : { requestHash: input.requestHash }),
      ...(input.traceparent === undefined ? {} : { traceparent: input.traceparent }),
      ...(input.tracestate === undefined ? {} : { tracestate: input.tracestate }),
      ...(callback === undefined ? {} : { callback }),
    };
    const claimFor = input.claimFor !== undefined && job.runAt <= now ? input.claimFor : undefined;
    if (claimFor !== undefined) return this.#insertClaimed(job, text, scope, claimFor, now);
    this.#sql.insert.run(
      job.id,
      job.operation,
      owner,
      text,
      job.maxAttempts,
      job.runAt,
      now,
      now,
      job.retentionMs,
      input.idempotencyKey ?? null,
      scope,
      input.requestHash ?? null,
      input.traceparent ?? null,
      input.tracestate ?? null,
      callback === undefined ? null : JSON.stringify(callback),
    );
    return { outcome: 'created', job };
  }

  /**
   * Inserts the job already leased to the worker that asked for it: no claim query, no second
   * write. The row is what an insert followed by a claim leaves (version 2); the caller is
   * answered the job as accepted (queued, version 1), the worker the claimed one.
   */
  #insertClaimed(
    queued: JobRecord,
    text: string,
    scope: string | null,
    claimFor: NonNullable<CreateJobInput['claimFor']>,
    now: number,
  ): CreateJobResult {
    const job: JobRecord = {
      ...queued,
      status: 'running',
      version: 2,
      attempts: 1,
      startedAt: now,
      leaseOwner: claimFor.workerId,
      leaseExpiresAt: now + claimFor.leaseMs,
    };
    this.#sql.insertClaimed.run(
      job.id,
      job.operation,
      job.owner,
      text,
      job.maxAttempts,
      job.runAt,
      now,
      now,
      now,
      job.retentionMs,
      claimFor.workerId,
      now + claimFor.leaseMs,
      job.idempotencyKey ?? null,
      scope,
      job.requestHash ?? null,
      job.traceparent ?? null,
      job.tracestate ?? null,
      job.callback === undefined ? null : JSON.stringify(job.callback),
    );
    // The worker gets its own copy of the input, as from a claim.
    const claimed: JobRecord = { ...job, input: JSON.parse(text) };
    return { outcome: 'created', job: queued, claim: { job: claimed, lease: { jobId: job.id, workerId: claimFor.workerId, attempt: 1 } } };
  }

  async get(id: string): Promise<JobLookup> {
    return this.#run(() => this.#lookup(id, this.#clock()));
  }

  async claim(options: ClaimOptions): Promise<readonly JobClaim[]> {
    const changed: string[] = [];
    const claims = await this.#run(() =>
      this.#db
        .transaction((): JobClaim[] => {
          const now = this.#clock();
          const limit = options.limit ?? 1;
          const ops = options.operations === undefined ? null : JSON.stringify(options.operations);
          const allowance = new Map<string, number>();
          for (const [operation, max] of Object.entries(options.concurrency ?? {})) {
            allowance.set(operation, max - this.#sql.countLive.get(operation, now)!.n);
          }
          const candidates: JobRow[] = [];
          for (const row of this.#sql.expiredLeases.all({ now, limit: SWEEP_LIMIT, ops })) {
            if (row.cancel_requested)
              this.#sql.finish.run({ status: 'canceled', error: JSON.stringify(canceledProblem()), now, seq: row.seq });
            else if (row.attempts >= row.max_attempts) {
              this.#sql.finish.run({ status: 'failed', error: JSON.stringify(leaseExpiredProblem(row.max_attempts)), now, seq: row.seq });
            } else {
              candidates.push(row);
              continue;
            }
            changed.push(row.id);
          }
          const full = [...allowance].filter(([, left]) => left <= 0).map(([operation]) => operation);
          if (candidates.length < limit) {
            candidates.push(
              ...this.#sql.due.all({ now, limit: limit - candidates.length, ops, full: full.length ? JSON.stringify(full) : null }),
            );
          }
          const claimed: JobClaim[] = [];
          for (const row of candidates) {
            if (claimed.length >= limit) break;
            const left = allowance.get(row.operation);
            if (left !== undefined) {
              if (left <= 0) continue;
              allowance.set(row.operation, left - 1);
            }
            this.#sql.take.run({ worker: options.workerId, now, leaseMs: options.leaseMs, seq: row.seq });
            // The row as the UPDATE left it, without reading it back.
            const taken: JobRow = {
              ...row,
              status: 'running',
              attempts: row.attempts + 1,
              lease_owner: options.workerId,
              lease_expires_at: now + options.leaseMs,
              started_at: row.started_at ?? now,
              version: row.version + 1,
              updated_at: now,
            };
            changed.push(taken.id);
            claimed.push({ job: toRecord(taken), lease: { jobId: taken.id, workerId: options.workerId, attempt: taken.attempts } });
          }
          return claimed;
        })
        .immediate(),
    );
    for (const id of changed) this.#waiters.notify(id);
    return claims;
  }

  async heartbeat(lease: JobLease, leaseMs: number): Promise<LeaseState> {
    return this.#run(() => {
      const row = this.#sql.heartbeat.get({ ...held(lease), until: this.#clock() + leaseMs });
      return leaseState(row);
    });
  }

  async progress(lease: JobLease, progress: unknown): Promise<LeaseState> {
    const state = await this.#run(() =>
      leaseState(this.#sql.progress.get({ ...held(lease), progress: JSON.stringify(progress ?? null), now: this.#clock() })),
    );
    if (state !== 'lost') this.#waiters.notify(lease.jobId);
    return state;
  }

  /** Completions of the same turn of the event loop share one transaction (group commit). */
  complete(lease: JobLease, result: unknown): Promise<SettleOutcome> {
    if (this.#closed) return Promise.reject(closedError());
    let text: string;
    try {
      text = JSON.stringify(result ?? null);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#completes.add({ lease, result: text });
  }

  #completeBatch(items: readonly { lease: JobLease; result: string }[]): ItemOutcome<SettleOutcome>[] {
    if (this.#closed) throw closedError();
    const now = this.#clock();
    let outcomes: ItemOutcome<SettleOutcome>[];
    try {
      outcomes = this.#db
        .transaction(() =>
          items.map(({ lease, result }): ItemOutcome<SettleOutcome> => {
            try {
              const row = this.#sql.complete.get({ ...held(lease), result, now });
              return { ok: true, value: row ? 'succeeded' : 'lost' };
            } catch (error) {
              return { ok: false, error: storeUnavailable(error, 'The SQLite job store failed') };
            }
          }),
        )
        .immediate();
    } catch (error) {
      throw storeUnavailable(error, 'The SQLite job store failed');
    }
    items.forEach(({ lease }, index) => {
      const outcome = outcomes[index];
      if (outcome?.ok && outcome.value === 'succeeded') this.#waiters.notify(lease.jobId);
    });
    return outcomes;
  }

  async release(lease: JobLease): Promise<ReleaseOutcome> {
    const outcome = await this.#run(() =>
      this.#db
        .transaction((): ReleaseOutcome => {
          const row = this.#sql.held.get(held(lease));
          if (!row) return 'lost';
          const now = this.#clock();
          if (row.cancel_requested) {
            this.#sql.finish.run({ status: 'canceled', error: JSON.stringify(canceledProblem()), now, seq: row.seq });
            return 'canceled';
          }
          this.#sql.release.run({ now, seq: row.seq });
          return 'released';
        })
        .immediate(),
    );
    if (outcome !== 'lost') this.#waiters.notify(lease.jobId);
    return outcome;
  }

  async fail(lease: JobLease, error: ProblemDetails, options: FailOptions = {}): Promise<SettleOutcome> {
    const outcome = await this.#run(() =>
      this.#db
        .transaction((): SettleOutcome => {
          const row = this.#sql.held.get(held(lease));
          if (!row) return 'lost';
          const now = this.#clock();
          if (row.cancel_requested) {
            this.#sql.finish.run({ status: 'canceled', error: JSON.stringify(canceledProblem()), now, seq: row.seq });
            return 'canceled';
          }
          if (options.retryDelayMs !== undefined && row.attempts < row.max_attempts) {
            this.#sql.requeue.run({ runAt: now + options.retryDelayMs, error: JSON.stringify(error), now, seq: row.seq });
            return 'retrying';
          }
          this.#sql.finish.run({ status: 'failed', error: JSON.stringify(error), now, seq: row.seq });
          return 'failed';
        })
        .immediate(),
    );
    if (outcome !== 'lost') this.#waiters.notify(lease.jobId);
    return outcome;
  }

  async cancel(id: string): Promise<CancelResult> {
    const result = await this.#run(() =>
      this.#db
        .transaction((): CancelResult => {
          const now = this.#clock();
          const lookup = this.#lookup(id, now);
          if (lookup.state !== 'found') return { outcome: lookup.state };
          const { job } = lookup;
          const seq = this.#sql.byId.get(id)!.seq;
          if (job.status === 'queued') {
            this.#sql.finish.run({ status: 'canceled', error: JSON.stringify(canceledProblem()), now, seq });
            return { outcome: 'canceled', job: toRecord(this.#sql.byId.get(id)!) };
          }
          if (job.status !== 'running') return { outcome: 'finished', job };
          if (!job.cancelRequested) this.#sql.requestCancel.run(now, seq);
          return { outcome: 'cancel-requested', job: toRecord(this.#sql.byId.get(id)!) };
        })
        .immediate(),
    );
    if (result.outcome === 'canceled' || result.outcome === 'cancel-requested') this.#waiters.notify(id);
    return result;
  }

  async setCallback(id: string, callback: JobCallback): Promise<boolean> {
    const row = await this.#run(() => this.#sql.setCallback.get(JSON.stringify(callback), this.#clock(), id));
    if (row) this.#waiters.notify(id);
    return row !== undefined;
  }

  waitForChange(id: string, sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<JobLookup> {
    if (this.#closed) return Promise.reject(closedError());
    const waiting = this.#waiters.waitForChange(id, sinceVersion, timeoutMs, () => this.get(id), signal);
    this.#startPolling();
    return waiting;
  }

  async counts(operation?: string): Promise<JobCounts> {
    return this.#run(() => {
      if (operation !== undefined) {
        return { queued: this.#sql.countStatus.get(operation, 'queued')!.n, running: this.#sql.countStatus.get(operation, 'running')!.n };
      }
      const counts = { queued: 0, running: 0 };
      for (const { status, n } of this.#sql.countAll.all()) counts[status as 'queued' | 'running'] = n;
      return counts;
    });
  }

  async purge(): Promise<number> {
    return this.#run(() =>
      this.#db
        .transaction((): number => {
          const now = this.#clock();
          this.#sql.buryExpired.run(now, now);
          const purged = this.#sql.deleteExpired.run(now).changes;
          this.#sql.deleteTombstones.run(now - this.#tombstoneMs);
          return purged;
        })
        .immediate(),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    this.#waiters.close();
    if (this.#ownsDb) this.#db.close();
  }

  #run<T>(work: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(storeUnavailable(error, 'The SQLite job store failed'));
    }
  }

  #lookup(id: string, now: number): JobLookup {
    const row = this.#sql.byId.get(id);
    if (row) return expired(row, now) ? { state: 'gone', id } : { state: 'found', job: toRecord(row) };
    return this.#sql.isGone.get(id) ? { state: 'gone', id } : { state: 'missing', id };
  }

  #bury(row: JobRow, now: number): void {
    this.#sql.bury.run(row.id, now);
    this.#sql.delete.run(row.seq);
  }

  /** Commits of other processes are seen through `PRAGMA data_version`, checked only while someone waits. */
  #startPolling(): void {
    if (this.#poller || this.#closed) return;
    this.#dataVersion = this.#readDataVersion();
    this.#poller = setInterval(() => {
      if (this.#waiters.size === 0) {
        this.#stopPolling();
        return;
      }
      const version = this.#readDataVersion();
      if (version !== this.#dataVersion) {
        this.#dataVersion = version;
        this.#waiters.notifyAll();
      }
    }, this.#pollIntervalMs);
    this.#poller.unref();
  }

  #stopPolling(): void {
    clearInterval(this.#poller);
    this.#poller = undefined;
  }

  #readDataVersion(): number {
    try {
      return this.#db.pragma('data_version', { simple: true }) as number;
    } catch {
      return this.#dataVersion;
    }
  }
}

function closedError(): SwitchboardError {
  return new SwitchboardError('SB_CLOSED', { detail: 'The SQLite job store was closed' });
}

function expired(row: JobRow, now: number): boolean {
  return row.expires_at !== null && row.expires_at <= now;
}

function held(lease: JobLease): Held {
  return { id: lease.jobId, worker: lease.workerId, attempt: lease.attempt };
}

function leaseState(row: { cancel_requested: number } | undefined): LeaseState {
  if (!row) return 'lost';
  return row.cancel_requested ? 'cancel-requested' : 'held';
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    operation: row.operation,
    owner: row.owner,
    status: row.status,
    input: JSON.parse(row.input),
    ...(row.result === null ? {} : { result: JSON.parse(row.result) }),
    ...(row.error === null ? {} : { error: JSON.parse(row.error) as ProblemDetails }),
    ...(row.progress === null ? {} : { progress: JSON.parse(row.progress) }),
    version: row.version,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: row.run_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.started_at === null ? {} : { startedAt: row.started_at }),
    ...(row.finished_at === null ? {} : { finishedAt: row.finished_at }),
    ...(row.expires_at === null ? {} : { expiresAt: row.expires_at }),
    retentionMs: row.retention_ms,
    cancelRequested: row.cancel_requested === 1,
    ...(row.lease_owner === null ? {} : { leaseOwner: row.lease_owner }),
    ...(row.lease_expires_at === null ? {} : { leaseExpiresAt: row.lease_expires_at }),
    ...(row.idempotency_key === null ? {} : { idempotencyKey: row.idempotency_key }),
    ...(row.request_hash === null ? {} : { requestHash: row.request_hash }),
    ...(row.traceparent === null ? {} : { traceparent: row.traceparent }),
    ...(row.tracestate === null ? {} : { tracestate: row.tracestate }),
    ...(row.callback === null ? {} : { callback: JSON.parse(row.callback) as JobCallback }),
  };
}
