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
import type { ItemOutcome } from '@switchboard/core/kit';
import {
  canceledProblem,
  JobWaiters,
  jobStoreDefaults,
  leaseExpiredProblem,
  newSecretId,
  RoundTripBatch,
  storeUnavailable,
} from '@switchboard/core/kit';
import pg from 'pg';
import { createInTransaction, insertRows, needsTransaction, type PreparedCreate } from './job-store-create.js';

export interface PostgresJobStoreOptions extends JobStoreOptions {
  readonly connectionString?: string;
  /** A pool instead of `connectionString`; the caller ends it. One client is held for LISTEN while someone waits. */
  readonly pool?: pg.Pool;
  /** Table name (letters, digits, `_`). Default `switchboard_jobs`; `<table>_gone` holds tombstones. */
  readonly table?: string;
}

const SWEEP_LIMIT = 100;

type Queryable = Pick<pg.PoolClient, 'query'>;

interface PendingComplete {
  readonly lease: JobLease;
  /** The result as JSON text. */
  readonly result: string;
  readonly now: number;
}

interface JobRow {
  seq: string;
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
  run_at: string;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
  expires_at: string | null;
  retention_ms: string;
  cancel_requested: boolean;
  lease_owner: string | null;
  lease_expires_at: string | null;
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
  seq BIGSERIAL PRIMARY KEY,
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
  run_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  expires_at BIGINT,
  retention_ms BIGINT NOT NULL,
  cancel_requested BOOLEAN NOT NULL DEFAULT false,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  idempotency_key TEXT,
  idempotency_scope TEXT UNIQUE,
  request_hash TEXT,
  traceparent TEXT,
  tracestate TEXT,
  callback TEXT
);
CREATE INDEX IF NOT EXISTS ${t}_queued ON ${t} (run_at, seq) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS ${t}_running ON ${t} (lease_expires_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS ${t}_active ON ${t} (operation, status) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS ${t}_expires ON ${t} (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${t}_gone (id TEXT PRIMARY KEY, gone_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS ${t}_gone_at ON ${t}_gone (gone_at);`;
}

/**
 * The PostgreSQL job store: claims with `FOR UPDATE SKIP LOCKED`, changes announced with
 * `NOTIFY <table>_changes`, so any number of processes on any hosts share it. The schema is created
 * on first use.
 */
export function createPostgresJobStore(options: PostgresJobStoreOptions): JobStore {
  return new PostgresJobStore(options);
}

class PostgresJobStore implements JobStore {
  readonly name = 'postgres';
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #t: string;
  readonly #channel: string;
  readonly #waiters = new JobWaiters();
  readonly #clock: () => number;
  readonly #retentionMs: number;
  readonly #tombstoneMs: number;
  #ready: Promise<void> | undefined;
  #listener: Promise<pg.PoolClient> | undefined;
  #closed = false;
  readonly #creates = new RoundTripBatch<PreparedCreate, CreateJobResult>((items) => this.#flushCreates(items));
  readonly #completes = new RoundTripBatch<PendingComplete, SettleOutcome>((items) => this.#flushCompletes(items));

  constructor(options: PostgresJobStoreOptions) {
    const table = options.table ?? 'switchboard_jobs';
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(table)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Invalid job table name "${table}" (lower-case letters, digits, _)` });
    }
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else if (options.connectionString !== undefined) {
      this.#pool = new pg.Pool({ connectionString: options.connectionString });
      this.#ownsPool = true;
    } else {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'createPostgresJobStore needs `connectionString` or `pool`' });
    }
    this.#pool.on('error', () => {
      // An idle client lost its connection; the pool replaces it and the next query reports any outage.
    });
    this.#t = table;
    this.#channel = `${table}_changes`;
    this.#clock = options.clock ?? Date.now;
    this.#retentionMs = options.retentionMs ?? jobStoreDefaults.retentionMs;
    this.#tombstoneMs = options.tombstoneMs ?? jobStoreDefaults.tombstoneMs;
  }

  async create(input: CreateJobInput): Promise<CreateJobResult> {
    this.#open();
    const owner = input.owner ?? null;
    return this.#creates.add({
      input,
      id: newSecretId(),
      owner,
      scope: input.idempotencyKey === undefined ? null : JSON.stringify([owner, input.idempotencyKey]),
      now: this.#clock(),
      retentionMs: this.#retentionMs,
    });
  }

  /** Group commit of the creates of one turn: one statement, or one transaction when keys or bounds are read first. */
  async #flushCreates(items: readonly PreparedCreate[]): Promise<ItemOutcome<CreateJobResult>[]> {
    const toResult = (row: JobRow, outcome: 'created' | 'existing'): CreateJobResult => ({ outcome, job: toRecord(row) });
    if (!needsTransaction(items)) {
      this.#open();
      let inserted: Map<string, JobRow>;
      try {
        await this.#ensureSchema();
        inserted = await insertRows<JobRow>(this.#pool, this.#t, items);
      } catch (error) {
        throw storeUnavailable(error, 'The PostgreSQL job store failed');
      }
      return items.map((item) => ({ ok: true, value: toResult(inserted.get(item.id)!, 'created') }));
    }
    return this.#transaction((client) =>
      createInTransaction<JobRow>(client, this.#t, items, {
        toResult,
        bury: async (ids, now) => {
          await client.query(
            `INSERT INTO ${this.#t}_gone (id, gone_at) SELECT id, $2 FROM unnest($1::text[]) AS id
             ON CONFLICT (id) DO UPDATE SET gone_at = excluded.gone_at`,
            [ids, now],
          );
          await client.query(`DELETE FROM ${this.#t} WHERE id = ANY($1::text[])`, [ids]);
        },
      }),
    );
  }

  async get(id: string): Promise<JobLookup> {
    return this.#lookup(this.#pool, id, this.#clock());
  }

  async claim(options: ClaimOptions): Promise<readonly JobClaim[]> {
    if (Object.keys(options.concurrency ?? {}).length === 0) {
      const claims = await this.#claimQueued(options);
      if (claims.length > 0) return claims;
    }
    return this.#claimInTransaction(options);
  }

  /**
   * The common claim in one statement: `UPDATE … WHERE seq IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
   * RETURNING *`, with the change notices in the same statement. It claims nothing while a lease of
   * the operations expired (takeovers go first, through the transaction), and it does not apply
   * per-operation concurrency limits.
   */
  async #claimQueued(options: ClaimOptions): Promise<JobClaim[]> {
    const t = this.#t;
    const now = this.#clock();
    const { rows } = await this.#query<JobRow>(
      `WITH c AS MATERIALIZED (
         SELECT seq FROM ${t} WHERE status = 'queued' AND run_at <= $2 AND ($4::text[] IS NULL OR operation = ANY($4))
           AND NOT EXISTS (SELECT 1 FROM ${t} WHERE status = 'running' AND lease_expires_at <= $2 AND ($4::text[] IS NULL OR operation = ANY($4)))
         ORDER BY run_at, seq LIMIT $5 FOR UPDATE SKIP LOCKED),
       u AS (UPDATE ${t} AS j SET status = 'running', attempts = j.attempts + 1, lease_owner = $1, lease_expires_at = $2::bigint + $3::bigint,
           started_at = coalesce(j.started_at, $2), version = j.version + 1, updated_at = $2
         FROM c WHERE j.seq = c.seq RETURNING j.*)
       SELECT u.*, pg_notify($6, u.id) FROM u`,
      [
        options.workerId,
        now,
        options.leaseMs,
        options.operations === undefined ? null : [...options.operations],
        options.limit ?? 1,
        this.#channel,
      ],
    );
    rows.sort((a, b) => Number(a.run_at) - Number(b.run_at) || Number(a.seq) - Number(b.seq));
    return rows.map((row) => ({ job: toRecord(row), lease: { jobId: row.id, workerId: options.workerId, attempt: row.attempts } }));
  }

  /** Takeovers of expired leases and per-operation concurrency limits need reads before writes: one transaction. */
  async #claimInTransaction(options: ClaimOptions): Promise<readonly JobClaim[]> {
    const t = this.#t;
    return this.#transaction(async (client) => {
      const now = this.#clock();
      const limit = options.limit ?? 1;
      const ops = options.operations === undefined ? null : [...options.operations];
      const allowance = new Map<string, number>();
      const limited = Object.entries(options.concurrency ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
      for (const [operation, max] of limited) {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${t}:run:${operation}`]);
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${t} WHERE operation = $1 AND status = 'running' AND lease_expires_at > $2`,
          [operation, now],
        );
        allowance.set(operation, max - Number(rows[0]!.n));
      }
      const changed: string[] = [];
      const candidates: { seq: string; operation: string }[] = [];
      const { rows: expiredRows } = await client.query<JobRow>(
        `SELECT * FROM ${t} WHERE status = 'running' AND lease_expires_at <= $1 AND ($2::text[] IS NULL OR operation = ANY($2))
         ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
        [now, ops, SWEEP_LIMIT],
      );
      for (const row of expiredRows) {
        if (row.cancel_requested) await this.#finish(client, row.seq, 'canceled', canceledProblem(), now);
        else if (row.attempts >= row.max_attempts)
          await this.#finish(client, row.seq, 'failed', leaseExpiredProblem(row.max_attempts), now);
        else {
          candidates.push(row);
          continue;
        }
        changed.push(row.id);
      }
      const full = [...allowance].filter(([, left]) => left <= 0).map(([operation]) => operation);
      if (candidates.length < limit) {
        const { rows } = await client.query<{ seq: string; operation: string }>(
          `SELECT seq, operation FROM ${t} WHERE status = 'queued' AND run_at <= $1 AND ($2::text[] IS NULL OR operation = ANY($2))
             AND NOT (operation = ANY($3::text[]))
           ORDER BY run_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED`,
          [now, ops, full, limit - candidates.length],
        );
        candidates.push(...rows);
      }
      const chosen: string[] = [];
      for (const row of candidates) {
        if (chosen.length >= limit) break;
        const left = allowance.get(row.operation);
        if (left !== undefined) {
          if (left <= 0) continue;
          allowance.set(row.operation, left - 1);
        }
        chosen.push(row.seq);
      }
      const claims: JobClaim[] = [];
      if (chosen.length > 0) {
        const { rows } = await client.query<JobRow>(
          `UPDATE ${t} SET status = 'running', attempts = attempts + 1, lease_owner = $1, lease_expires_at = $2::bigint + $3::bigint,
             started_at = coalesce(started_at, $2), version = version + 1, updated_at = $2
           WHERE seq = ANY($4::bigint[]) RETURNING *`,
          [options.workerId, now, options.leaseMs, chosen],
        );
        const order = new Map(chosen.map((seq, i) => [seq, i]));
        rows.sort((a, b) => order.get(a.seq)! - order.get(b.seq)!);
        for (const row of rows) {
          changed.push(row.id);
          claims.push({ job: toRecord(row), lease: { jobId: row.id, workerId: options.workerId, attempt: row.attempts } });
        }
      }
      if (changed.length > 0) await client.query('SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id', [this.#channel, changed]);
      return claims;
    });
  }

  async heartbeat(lease: JobLease, leaseMs: number): Promise<LeaseState> {
    const { rows } = await this.#query<{ cancel_requested: boolean }>(
      `UPDATE ${this.#t} SET lease_expires_at = $1 WHERE ${HELD} RETURNING cancel_requested`,
      [this.#clock() + leaseMs, lease.jobId, lease.workerId, lease.attempt],
    );
    return leaseState(rows[0]);
  }

  async progress(lease: JobLease, progress: unknown): Promise<LeaseState> {
    const { rows } = await this.#query<{ cancel_requested: boolean }>(
      `WITH u AS (UPDATE ${this.#t} SET progress = $1, version = version + 1, updated_at = $5 WHERE ${HELD} RETURNING id, cancel_requested)
       SELECT cancel_requested, pg_notify($6, id) FROM u`,
      [JSON.stringify(progress ?? null), lease.jobId, lease.workerId, lease.attempt, this.#clock(), this.#channel],
    );
    return leaseState(rows[0]);
  }

  async complete(lease: JobLease, result: unknown): Promise<SettleOutcome> {
    this.#open();
    return this.#completes.add({ lease, result: JSON.stringify(result ?? null), now: this.#clock() });
  }

  /** The completions of one turn in one `UPDATE … FROM unnest(…)`; a lease twice in a batch goes after, alone. */
  async #flushCompletes(items: readonly PendingComplete[]): Promise<ItemOutcome<SettleOutcome>[]> {
    const seen = new Set<string>();
    const first = items.filter((item) => !seen.has(item.lease.jobId) && seen.add(item.lease.jobId));
    const { rows } = await this.#query<{ id: string }>(
      `WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[]) AS v(id, worker, attempt, result, now)),
       u AS (UPDATE ${this.#t} AS j SET status = 'succeeded', result = v.result, finished_at = v.now, expires_at = v.now + j.retention_ms,
         version = j.version + 1, updated_at = v.now FROM v
         WHERE j.id = v.id AND j.status = 'running' AND j.lease_owner = v.worker AND j.attempts = v.attempt RETURNING j.id)
       SELECT id, pg_notify($6, id) FROM u`,
      [
        first.map((item) => item.lease.jobId),
        first.map((item) => item.lease.workerId),
        first.map((item) => item.lease.attempt),
        first.map((item) => item.result),
        first.map((item) => item.now),
        this.#channel,
      ],
    );
    const done = new Set(rows.map((row) => row.id));
    const outcomes: ItemOutcome<SettleOutcome>[] = [];
    for (const item of items) {
      if (first.includes(item)) outcomes.push({ ok: true, value: done.has(item.lease.jobId) ? 'succeeded' : 'lost' });
      else
        outcomes.push(
          await this.#completeOne(item).then(
            (value) => ({ ok: true as const, value }),
            (error: unknown) => ({ ok: false as const, error }),
          ),
        );
    }
    return outcomes;
  }

  async #completeOne({ lease, result, now }: PendingComplete): Promise<SettleOutcome> {
    const { rows } = await this.#query(
      `WITH u AS (UPDATE ${this.#t} SET status = 'succeeded', result = $1, finished_at = $5, expires_at = $5 + retention_ms,
         version = version + 1, updated_at = $5 WHERE ${HELD} RETURNING id)
       SELECT pg_notify($6, id) FROM u`,
      [result, lease.jobId, lease.workerId, lease.attempt, now, this.#channel],
    );
    return rows.length > 0 ? 'succeeded' : 'lost';
  }

  async fail(lease: JobLease, error: ProblemDetails, options: FailOptions = {}): Promise<SettleOutcome> {
    return this.#transaction(async (client) => {
      const { rows } = await client.query<JobRow>(
        `SELECT * FROM ${this.#t} WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3 FOR UPDATE`,
        [lease.jobId, lease.workerId, lease.attempt],
      );
      const row = rows[0];
      if (!row) return 'lost';
      const now = this.#clock();
      let outcome: SettleOutcome;
      if (row.cancel_requested) {
        await this.#finish(client, row.seq, 'canceled', canceledProblem(), now);
        outcome = 'canceled';
      } else if (options.retryDelayMs !== undefined && row.attempts < row.max_attempts) {
        await client.query(
          `UPDATE ${this.#t} SET status = 'queued', run_at = $1, error = $2, lease_owner = NULL, lease_expires_at = NULL,
             version = version + 1, updated_at = $3 WHERE seq = $4`,
          [now + options.retryDelayMs, JSON.stringify(error), now, row.seq],
        );
        outcome = 'retrying';
      } else {
        await this.#finish(client, row.seq, 'failed', error, now);
        outcome = 'failed';
      }
      await client.query('SELECT pg_notify($1, $2)', [this.#channel, row.id]);
      return outcome;
    });
  }

  async release(lease: JobLease): Promise<ReleaseOutcome> {
    return this.#transaction(async (client) => {
      const { rows } = await client.query<JobRow>(
        `SELECT * FROM ${this.#t} WHERE id = $1 AND status = 'running' AND lease_owner = $2 AND attempts = $3 FOR UPDATE`,
        [lease.jobId, lease.workerId, lease.attempt],
      );
      const row = rows[0];
      if (!row) return 'lost';
      const now = this.#clock();
      let outcome: ReleaseOutcome;
      if (row.cancel_requested) {
        await this.#finish(client, row.seq, 'canceled', canceledProblem(), now);
        outcome = 'canceled';
      } else {
        await client.query(
          `UPDATE ${this.#t} SET status = 'queued', run_at = $1, attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
             started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END, version = version + 1, updated_at = $1 WHERE seq = $2`,
          [now, row.seq],
        );
        outcome = 'released';
      }
      await client.query('SELECT pg_notify($1, $2)', [this.#channel, row.id]);
      return outcome;
    });
  }

  async cancel(id: string): Promise<CancelResult> {
    const t = this.#t;
    return this.#transaction(async (client) => {
      const now = this.#clock();
      const { rows } = await client.query<JobRow>(`SELECT * FROM ${t} WHERE id = $1 FOR UPDATE`, [id]);
      const row = rows[0];
      if (!row) return { outcome: (await this.#isGone(client, id)) ? 'gone' : 'missing' };
      if (expired(row, now)) return { outcome: 'gone' };
      if (row.status === 'queued') {
        await this.#finish(client, row.seq, 'canceled', canceledProblem(), now);
      } else if (row.status === 'running' && !row.cancel_requested) {
        await client.query(`UPDATE ${t} SET cancel_requested = true, version = version + 1, updated_at = $1 WHERE seq = $2`, [
          now,
          row.seq,
        ]);
      } else if (row.status !== 'running') {
        return { outcome: 'finished', job: toRecord(row) };
      }
      await client.query('SELECT pg_notify($1, $2)', [this.#channel, id]);
      const { rows: after } = await client.query<JobRow>(`SELECT * FROM ${t} WHERE seq = $1`, [row.seq]);
      return { outcome: row.status === 'queued' ? 'canceled' : 'cancel-requested', job: toRecord(after[0]!) };
    });
  }

  async setCallback(id: string, callback: JobCallback): Promise<boolean> {
    const { rows } = await this.#query(
      `WITH u AS (UPDATE ${this.#t} SET callback = $1, version = version + 1, updated_at = $2 WHERE id = $3 RETURNING id)
       SELECT pg_notify($4, id) FROM u`,
      [JSON.stringify(callback), this.#clock(), id, this.#channel],
    );
    return rows.length > 0;
  }

  async waitForChange(id: string, sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<JobLookup> {
    this.#open();
    await this.#listen();
    return this.#waiters.waitForChange(id, sinceVersion, timeoutMs, () => this.get(id), signal);
  }

  async counts(operation?: string): Promise<JobCounts> {
    const { rows } = await this.#query<{ status: 'queued' | 'running'; n: string }>(
      `SELECT status, count(*) AS n FROM ${this.#t} WHERE status IN ('queued', 'running') AND ($1::text IS NULL OR operation = $1)
       GROUP BY status`,
      [operation ?? null],
    );
    const counts = { queued: 0, running: 0 };
    for (const { status, n } of rows) counts[status] = Number(n);
    return counts;
  }

  async purge(): Promise<number> {
    const t = this.#t;
    return this.#transaction(async (client) => {
      const now = this.#clock();
      const { rows } = await client.query<{ n: string }>(
        `WITH d AS (DELETE FROM ${t} WHERE expires_at <= $1 RETURNING id),
              g AS (INSERT INTO ${t}_gone (id, gone_at) SELECT id, $1 FROM d ON CONFLICT (id) DO UPDATE SET gone_at = excluded.gone_at)
         SELECT count(*) AS n FROM d`,
        [now],
      );
      await client.query(`DELETE FROM ${t}_gone WHERE gone_at <= $1`, [now - this.#tombstoneMs]);
      return Number(rows[0]!.n);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close();
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) {
      try {
        const client = await listener;
        client.release(true);
      } catch {
        // The listener never connected; nothing to release.
      }
    }
    if (this.#ownsPool) await this.#pool.end();
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'The PostgreSQL job store was closed' });
  }

  /** Creates the schema once per store; concurrent starts serialise on an advisory lock. */
  #ensureSchema(): Promise<void> {
    this.#ready ??= (async () => {
      const client = await this.#pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`switchboard:schema:${this.#t}`]);
        await client.query(schema(this.#t));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    this.#open();
    try {
      await this.#ensureSchema();
      return await this.#pool.query<R>(text, values);
    } catch (error) {
      throw storeUnavailable(error, 'The PostgreSQL job store failed');
    }
  }

  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.#open();
    let client: pg.PoolClient;
    try {
      await this.#ensureSchema();
      client = await this.#pool.connect();
    } catch (error) {
      throw storeUnavailable(error, 'The PostgreSQL job store could not be reached');
    }
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      const rolledBack = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      );
      client.release(!rolledBack);
      throw storeUnavailable(error, 'The PostgreSQL job store failed');
    }
  }

  async #lookup(db: Queryable, id: string, now: number): Promise<JobLookup> {
    const { rows } = await (db === this.#pool
      ? this.#query<JobRow>(`SELECT * FROM ${this.#t} WHERE id = $1`, [id])
      : db.query<JobRow>(`SELECT * FROM ${this.#t} WHERE id = $1`, [id]));
    const row = rows[0];
    if (row) return expired(row, now) ? { state: 'gone', id } : { state: 'found', job: toRecord(row) };
    return (await this.#isGone(db, id)) ? { state: 'gone', id } : { state: 'missing', id };
  }

  async #isGone(db: Queryable, id: string): Promise<boolean> {
    const sql = `SELECT 1 FROM ${this.#t}_gone WHERE id = $1`;
    const { rows } = db === this.#pool ? await this.#query(sql, [id]) : await db.query(sql, [id]);
    return rows.length > 0;
  }

  async #finish(client: Queryable, seq: string, status: JobStatus, error: ProblemDetails, now: number): Promise<void> {
    await client.query(
      `UPDATE ${this.#t} SET status = $1, error = $2, finished_at = $3, expires_at = $3 + retention_ms, version = version + 1, updated_at = $3
       WHERE seq = $4`,
      [status, JSON.stringify(error), now, seq],
    );
  }

  /** One pooled client LISTENs for the store's life once someone waited; a lost connection is reopened on the next wait. */
  #listen(): Promise<pg.PoolClient> {
    this.#listener ??= (async () => {
      let client: pg.PoolClient;
      try {
        await this.#ensureSchema();
        client = await this.#pool.connect();
      } catch (error) {
        throw storeUnavailable(error, 'The PostgreSQL job store could not listen for changes');
      }
      client.on('notification', (message) => {
        if (message.channel === this.#channel && message.payload) this.#waiters.notify(message.payload);
      });
      client.on('error', () => {
        this.#listener = undefined;
        client.release(true);
        this.#waiters.notifyAll();
      });
      try {
        await client.query(`LISTEN ${this.#channel}`);
      } catch (error) {
        client.release(true);
        throw storeUnavailable(error, 'The PostgreSQL job store could not listen for changes');
      }
      return client;
    })().catch((error: unknown) => {
      this.#listener = undefined;
      throw error;
    });
    return this.#listener;
  }
}

/** `$2` job id, `$3` worker, `$4` attempt. */
const HELD = `id = $2 AND status = 'running' AND lease_owner = $3 AND attempts = $4`;

function expired(row: JobRow, now: number): boolean {
  return row.expires_at !== null && Number(row.expires_at) <= now;
}

function leaseState(row: { cancel_requested: boolean } | undefined): LeaseState {
  if (!row) return 'lost';
  return row.cancel_requested ? 'cancel-requested' : 'held';
}

function optionalNumber(value: string | null): number | undefined {
  return value === null ? undefined : Number(value);
}

function toRecord(row: JobRow): JobRecord {
  const startedAt = optionalNumber(row.started_at);
  const finishedAt = optionalNumber(row.finished_at);
  const expiresAt = optionalNumber(row.expires_at);
  const leaseExpiresAt = optionalNumber(row.lease_expires_at);
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
    runAt: Number(row.run_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    retentionMs: Number(row.retention_ms),
    cancelRequested: row.cancel_requested,
    ...(row.lease_owner === null ? {} : { leaseOwner: row.lease_owner }),
    ...(leaseExpiresAt === undefined ? {} : { leaseExpiresAt }),
    ...(row.idempotency_key === null ? {} : { idempotencyKey: row.idempotency_key }),
    ...(row.request_hash === null ? {} : { requestHash: row.request_hash }),
    ...(row.traceparent === null ? {} : { traceparent: row.traceparent }),
    ...(row.tracestate === null ? {} : { tracestate: row.tracestate }),
    ...(row.callback === null ? {} : { callback: JSON.parse(row.callback) as JobCallback }),
  };
}
