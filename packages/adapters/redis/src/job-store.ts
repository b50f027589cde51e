import { createHash } from 'node:crypto';
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
import { Redis } from 'ioredis';
import * as scripts from './job-store-scripts.js';

interface PendingComplete {
  readonly lease: JobLease;
  /** The result as JSON text. */
  readonly result: string;
  readonly now: number;
}

export interface RedisJobStoreOptions extends JobStoreOptions {
  /** `redis://host:port/db`. */
  readonly url?: string;
  /** A client instead of `url`; the caller quits it. A duplicate is opened for pub/sub while someone waits. */
  readonly client?: Redis;
  /** Prepended to every key and to the change channel. Default `switchboard:jobs:`. Use a hash tag (`{jobs}:`) on Redis Cluster. */
  readonly prefix?: string;
}

const SWEEP_LIMIT = 100;
const PURGE_BATCH = 1_000;

/** A Lua script run by SHA, loaded on first use (and again after a server restart). */
class Script {
  readonly #lua: string;
  readonly #sha: string;

  constructor(lua: string) {
    this.#lua = lua;
    this.#sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: Redis, args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, 0, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.#lua, 0, ...args);
    }
  }
}

const lua = {
  create: new Script(scripts.CREATE),
  claim: new Script(scripts.CLAIM),
  heartbeat: new Script(scripts.HEARTBEAT),
  progress: new Script(scripts.PROGRESS),
  complete: new Script(scripts.COMPLETE),
  completeMany: new Script(scripts.COMPLETE_MANY),
  fail: new Script(scripts.FAIL),
  release: new Script(scripts.RELEASE),
  cancel: new Script(scripts.CANCEL),
  setCallback: new Script(scripts.SET_CALLBACK),
  purge: new Script(scripts.PURGE),
};

/**
 * The Redis job store: every state change is one Lua script, so claims and completions are atomic
 * across any number of processes; changes are announced on a pub/sub channel. Jobs survive a Redis
 * restart only as far as its persistence (AOF/RDB) is configured.
 */
export function createRedisJobStore(options: RedisJobStoreOptions): JobStore {
  return new RedisJobStore(options);
}

class RedisJobStore implements JobStore {
  readonly name = 'redis';
  readonly #client: Redis;
  readonly #ownsClient: boolean;
  readonly #p: string;
  readonly #waiters = new JobWaiters();
  readonly #clock: () => number;
  readonly #retentionMs: number;
  readonly #tombstoneMs: number;
  #subscriber: Promise<Redis> | undefined;
  #closed = false;
  readonly #completes = new RoundTripBatch<PendingComplete, SettleOutcome>((items) => this.#flushCompletes(items));

  constructor(options: RedisJobStoreOptions) {
    if (options.client) {
      this.#client = options.client;
      this.#ownsClient = false;
    } else if (options.url !== undefined) {
      // Auto-pipelining sends the scripts started in one turn of the event loop (the creates and
      // completions of concurrent requests) in one write, so they share one round trip.
      this.#client = new Redis(options.url, { maxRetriesPerRequest: 2, lazyConnect: false, enableAutoPipelining: true });
      this.#client.on('error', () => {
        // Reconnects on its own; commands meanwhile fail with SB_STORE_UNAVAILABLE.
      });
      this.#ownsClient = true;
    } else {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'createRedisJobStore needs `url` or `client`' });
    }
    this.#p = options.prefix ?? 'switchboard:jobs:';
    this.#clock = options.clock ?? Date.now;
    this.#retentionMs = options.retentionMs ?? jobStoreDefaults.retentionMs;
    this.#tombstoneMs = options.tombstoneMs ?? jobStoreDefaults.tombstoneMs;
  }

  async create(input: CreateJobInput): Promise<CreateJobResult> {
    const now = this.#clock();
    const owner = input.owner ?? null;
    const scope = input.idempotencyKey === undefined ? '' : JSON.stringify([owner, input.idempotencyKey]);
    const id = newSecretId();
    const runAt = input.runAt ?? now;
    const fields: Record<string, string | number | undefined> = {
      id,
      operation: input.operation,
      owner: owner ?? undefined,
      status: 'queued',
      input: JSON.stringify(input.input ?? null),
      version: 1,
      attempts: 0,
      maxAttempts: input.maxAttempts ?? jobStoreDefaults.maxAttempts,
      runAt,
      createdAt: now,
      updatedAt: now,
      retentionMs: input.retentionMs ?? this.#retentionMs,
      cancelRequested: 0,
      idempotencyKey: input.idempotencyKey,
      scope: scope || undefined,
      requestHash: input.requestHash,
      traceparent: input.traceparent,
      tracestate: input.tracestate,
      callback: input.callbackUrl === undefined ? undefined : JSON.stringify({ url: input.callbackUrl, state: 'pending', attempts: 0 }),
    };
    const pairs: (string | number)[] = [];
    for (const [name, value] of Object.entries(fields)) if (value !== undefined) pairs.push(name, value);
    const reply = (await this.#run(lua.create, [
      now,
      id,
      input.operation,
      scope,
      input.requestHash ?? '',
      input.maxQueued ?? '',
      runAt,
      ...pairs,
    ])) as [string, unknown?];
    switch (reply[0]) {
      case 'created':
        return { outcome: 'created', job: toRecord(reply[1] as string[]) };
      case 'existing':
        return { outcome: 'existing', job: toRecord(reply[1] as string[]) };
      case 'mismatch':
        return { outcome: 'mismatch', jobId: reply[1] as string };
      default:
        return { outcome: 'full' };
    }
  }

  async get(id: string): Promise<JobLookup> {
    const now = this.#clock();
    const [hash, gone] = await this.#do(() =>
      Promise.all([this.#client.hgetall(`${this.#p}job:${id}`), this.#client.zscore(`${this.#p}gone`, id)]),
    );
    if (hash.id === undefined) return gone === null ? { state: 'missing', id } : { state: 'gone', id };
    const job = fromHash(hash);
    return job.expiresAt !== undefined && job.expiresAt <= now ? { state: 'gone', id } : { state: 'found', job };
  }

  async claim(options: ClaimOptions): Promise<readonly JobClaim[]> {
    const reply = (await this.#run(lua.claim, [
      this.#clock(),
      options.workerId,
      options.leaseMs,
      options.limit ?? 1,
      SWEEP_LIMIT,
      options.operations === undefined ? '' : JSON.stringify(options.operations),
      options.concurrency === undefined ? '' : JSON.stringify(options.concurrency),
      JSON.stringify(canceledProblem()),
      JSON.stringify(leaseExpiredProblem(Number(scripts.ATTEMPTS_PLACEHOLDER))),
    ])) as string[][];
    return reply.map((flat) => {
      const job = toRecord(flat);
      return { job, lease: { jobId: job.id, workerId: options.workerId, attempt: job.attempts } };
    });
  }

  async heartbeat(lease: JobLease, leaseMs: number): Promise<LeaseState> {
    const reply = await this.#run(lua.heartbeat, [lease.jobId, lease.workerId, lease.attempt, this.#clock() + leaseMs]);
    return leaseState(reply);
  }

  async progress(lease: JobLease, progress: unknown): Promise<LeaseState> {
    const reply = await this.#run(lua.progress, [
      lease.jobId,
      lease.workerId,
      lease.attempt,
      this.#clock(),
      JSON.stringify(progress ?? null),
    ]);
    return leaseState(reply);
  }

  async complete(lease: JobLease, result: unknown): Promise<SettleOutcome> {
    this.#open();
    return this.#completes.add({ lease, result: JSON.stringify(result ?? null), now: this.#clock() });
  }

  /** The completions of one turn in one script run, applied in order. */
  async #flushCompletes(items: readonly PendingComplete[]): Promise<ItemOutcome<SettleOutcome>[]> {
    if (items.length === 1) {
      const [{ lease, result, now }] = items as [PendingComplete];
      const outcome = (await this.#run(lua.complete, [lease.jobId, lease.workerId, lease.attempt, now, result])) as SettleOutcome;
      return [{ ok: true, value: outcome }];
    }
    const args = items.flatMap(({ lease, result, now }) => [lease.jobId, lease.workerId, lease.attempt, now, result]);
    const reply = (await this.#run(lua.completeMany, args)) as SettleOutcome[];
    return reply.map((value) => ({ ok: true, value }));
  }

  async fail(lease: JobLease, error: ProblemDetails, options: FailOptions = {}): Promise<SettleOutcome> {
    return (await this.#run(lua.fail, [
      lease.jobId,
      lease.workerId,
      lease.attempt,
      this.#clock(),
      JSON.stringify(error),
      options.retryDelayMs ?? '',
      JSON.stringify(canceledProblem()),
    ])) as SettleOutcome;
  }

  async release(lease: JobLease): Promise<ReleaseOutcome> {
    return (await this.#run(lua.release, [
      lease.jobId,
      lease.workerId,
      lease.attempt,
      this.#clock(),
      JSON.stringify(canceledProblem()),
    ])) as ReleaseOutcome;
  }

  async cancel(id: string): Promise<CancelResult> {
    const reply = (await this.#run(lua.cancel, [id, this.#clock(), JSON.stringify(canceledProblem())])) as [string, string[]?];
    const outcome = reply[0] as CancelResult['outcome'];
    if (outcome === 'gone' || outcome === 'missing') return { outcome };
    return { outcome, job: toRecord(reply[1]!) };
  }

  async setCallback(id: string, callback: JobCallback): Promise<boolean> {
    return (await this.#run(lua.setCallback, [id, this.#clock(), JSON.stringify(callback)])) === 1;
  }

  async waitForChange(id: string, sinceVersion: number, timeoutMs: number, signal?: AbortSignal): Promise<JobLookup> {
    this.#open();
    await this.#subscribe();
    return this.#waiters.waitForChange(id, sinceVersion, timeoutMs, () => this.get(id), signal);
  }

  async counts(operation?: string): Promise<JobCounts> {
    const ops = operation === undefined ? await this.#do(() => this.#client.smembers(`${this.#p}ops`)) : [operation];
    const sizes = await this.#do(() =>
      Promise.all(ops.flatMap((op) => [this.#client.zcard(`${this.#p}q:${op}`), this.#client.zcard(`${this.#p}r:${op}`)])),
    );
    const counts = { queued: 0, running: 0 };
    sizes.forEach((n, i) => {
      if (i % 2 === 0) counts.queued += n;
      else counts.running += n;
    });
    return counts;
  }

  async purge(): Promise<number> {
    const now = this.#clock();
    let total = 0;
    for (;;) {
      const purged = Number(await this.#run(lua.purge, [now, now - this.#tombstoneMs, PURGE_BATCH]));
      total += purged;
      if (purged < PURGE_BATCH) return total;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) await subscriber.then((s) => s.quit()).catch(() => undefined);
    if (this.#ownsClient) await this.#client.quit().catch(() => this.#client.disconnect());
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'The Redis job store was closed' });
  }

  async #do<T>(work: () => Promise<T>): Promise<T> {
    this.#open();
    try {
      return await work();
    } catch (error) {
      throw storeUnavailable(error, 'The Redis job store failed');
    }
  }

  #run(script: Script, args: readonly (string | number)[]): Promise<unknown> {
    return this.#do(() => script.run(this.#client, [this.#p, ...args]));
  }

  /** A duplicate connection subscribes to the change channel once someone waits. */
  #subscribe(): Promise<Redis> {
    this.#subscriber ??= (async () => {
      const subscriber = this.#client.duplicate({ maxRetriesPerRequest: 2 });
      subscriber.on('error', () => {
        // Reconnects and resubscribes on its own; waits meanwhile end on their timeout.
      });
      subscriber.on('message', (_channel: string, id: string) => this.#waiters.notify(id));
      try {
        await subscriber.subscribe(`${this.#p}changes`);
      } catch (error) {
        subscriber.disconnect();
        throw storeUnavailable(error, 'The Redis job store could not subscribe to changes');
      }
      return subscriber;
    })().catch((error: unknown) => {
      this.#subscriber = undefined;
      throw error;
    });
    return this.#subscriber;
  }
}

function leaseState(reply: unknown): LeaseState {
  if (reply === 2) return 'cancel-requested';
  return reply === 1 ? 'held' : 'lost';
}

function toRecord(flat: readonly string[]): JobRecord {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return fromHash(hash);
}

function optionalNumber(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

function fromHash(h: Record<string, string>): JobRecord {
  const startedAt = optionalNumber(h.startedAt);
  const finishedAt = optionalNumber(h.finishedAt);
  const expiresAt = optionalNumber(h.expiresAt);
  const leaseExpiresAt = optionalNumber(h.leaseExpiresAt);
  return {
    id: h.id!,
    operation: h.operation!,
    owner: h.owner ?? null,
    status: h.status as JobStatus,
    input: JSON.parse(h.input!),
    ...(h.result === undefined ? {} : { result: JSON.parse(h.result) }),
    ...(h.error === undefined ? {} : { error: JSON.parse(h.error) as ProblemDetails }),
    ...(h.progress === undefined ? {} : { progress: JSON.parse(h.progress) }),
    version: Number(h.version),
    attempts: Number(h.attempts),
    maxAttempts: Number(h.maxAttempts),
    runAt: Number(h.runAt),
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(finishedAt === undefined ? {} : { finishedAt }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
    retentionMs: Number(h.retentionMs),
    cancelRequested: h.cancelRequested === '1',
    ...(h.leaseOwner === undefined ? {} : { leaseOwner: h.leaseOwner }),
    ...(leaseExpiresAt === undefined ? {} : { leaseExpiresAt }),
    ...(h.idempotencyKey === undefined ? {} : { idempotencyKey: h.idempotencyKey }),
    ...(h.requestHash === undefined ? {} : { requestHash: h.requestHash }),
    ...(h.traceparent === undefined ? {} : { traceparent: h.traceparent }),
    ...(h.tracestate === undefined ? {} : { tracestate: h.tracestate }),
    ...(h.callback === undefined ? {} : { callback: JSON.parse(h.callback) as JobCallback }),
  };
}
