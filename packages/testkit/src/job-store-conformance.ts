import type { CreateJobInput, JobLookup, JobRecord, JobStore } from '@switchboard/core';
import { isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/** What the suite hands the factory: every store under test must read time from `clock`. */
export interface JobStoreFactoryContext {
  readonly clock: () => number;
  readonly retentionMs: number;
  readonly tombstoneMs: number;
}

export interface JobStoreHarness {
  readonly store: JobStore;
  /**
   * Opens a second store on the same data (another connection, as another process would), with the
   * same context. Concurrency and cross-connection change tests use it when given.
   */
  readonly openPeer?: () => Promise<JobStore>;
  /** Drops what the harness created (tables, keys, files). Called after the stores are closed. */
  readonly cleanup?: () => Promise<void>;
}

export interface JobStoreConformanceOptions {
  /** Longest wait for `waitForChange` to notice a change made through a peer. Default 3 000 ms. */
  readonly changeTimeoutMs?: number;
  /** Jobs in the parallel-claim test. Default 60. */
  readonly parallelJobs?: number;
}

const RETENTION_MS = 60_000;
const TOMBSTONE_MS = 600_000;
const LEASE_MS = 1_000;

function found(lookup: JobLookup): JobRecord {
  if (lookup.state !== 'found') throw new Error(`expected job ${lookup.id} to be found, it is ${lookup.state}`);
  return lookup.job;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves `promise`, or rejects when it takes longer than `ms` (a hang, not a slow store). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/**
 * The job store conformance suite. `factory` returns a fresh, empty store (its own tables, keys or
 * file) reading time from `context.clock`, which the suite moves forward by hand; leases and
 * retention are therefore tested without sleeping.
 */
export function describeJobStoreConformance(
  name: string,
  factory: (context: JobStoreFactoryContext) => Promise<JobStoreHarness>,
  options: JobStoreConformanceOptions = {},
): void {
  const changeTimeoutMs = options.changeTimeoutMs ?? 3_000;
  const parallelJobs = options.parallelJobs ?? 60;

  describe(`job store conformance: ${name}`, () => {
    let now = 0;
    let harness: JobStoreHarness;
    let store: JobStore;
    const peers: JobStore[] = [];
    const context: JobStoreFactoryContext = { clock: () => now, retentionMs: RETENTION_MS, tombstoneMs: TOMBSTONE_MS };
    const advance = (ms: number) => {
      now += ms;
    };
    const submit = async (input: Partial<CreateJobInput> = {}): Promise<JobRecord> => {
      const result = await store.create({ operation: 'resize', input: { n: 1 }, ...input });
      if (result.outcome !== 'created') throw new Error(`expected a new job, got ${result.outcome}`);
      return result.job;
    };
    const claimOne = async (target: JobStore = store, workerId = 'worker-a') => {
      const claims = await target.claim({ workerId, leaseMs: LEASE_MS });
      expect(claims).toHaveLength(1);
      return claims[0]!;
    };
    const peer = async (): Promise<JobStore> => {
      const opened = harness.openPeer ? await harness.openPeer() : store;
      if (opened !== store) peers.push(opened);
      return opened;
    };

    beforeEach(async () => {
      now = 1_700_000_000_000;
      harness = await factory(context);
      store = harness.store;
    });

    afterEach(async () => {
      await Promise.all(peers.splice(0).map((p) => p.close()));
      await store.close();
      await harness.cleanup?.();
    });

    describe('create and get', () => {
      it('creates a queued job with every field kept', async () => {
        const job = await submit({
          input: { name: 'ada', tags: ['x'], nested: { ok: true } },
          owner: 'svc-a',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'vendor=1',
          callbackUrl: 'https://a.example/hooks/done',
          maxAttempts: 5,
        });
        expect(job.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
        expect(job).toMatchObject({
          operation: 'resize',
          owner: 'svc-a',
          status: 'queued',
          input: { name: 'ada', tags: ['x'], nested: { ok: true } },
          version: 1,
          attempts: 0,
          maxAttempts: 5,
          runAt: now,
          createdAt: now,
          updatedAt: now,
          retentionMs: RETENTION_MS,
          cancelRequested: false,
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          tracestate: 'vendor=1',
          callback: { url: 'https://a.example/hooks/done', state: 'pending', attempts: 0 },
        });
        expect(job.result).toBeUndefined();
        expect(job.error).toBeUndefined();
        expect(job.expiresAt).toBeUndefined();
        expect(found(await store.get(job.id))).toEqual(job);
      });

      it('defaults: no owner, three attempts, the store retention', async () => {
        const job = await submit();
        expect(job.owner).toBeNull();
        expect(job.maxAttempts).toBe(3);
        expect(job.retentionMs).toBe(RETENTION_MS);
      });

      it('gives unguessable, distinct ids', async () => {
        const ids = new Set<string>();
        for (let i = 0; i < 20; i++) ids.add((await submit()).id);
        expect(ids.size).toBe(20);
      });

      it('answers missing for an id it never held', async () => {
        expect(await store.get('no-such-job')).toEqual({ state: 'missing', id: 'no-such-job' });
      });
    });

    describe('idempotency', () => {
      it('returns the same job for the same owner, key and request hash', async () => {
        const first = await submit({ owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h1' });
        const again = await store.create({ operation: 'resize', input: { n: 1 }, owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h1' });
        expect(again).toEqual({ outcome: 'existing', job: first });
        expect((await store.counts('resize')).queued).toBe(1);
      });

      it('answers mismatch for the same key with another request hash or operation', async () => {
        const first = await submit({ owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h1' });
        const otherHash = await store.create({ operation: 'resize', input: {}, owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h2' });
        expect(otherHash).toEqual({ outcome: 'mismatch', jobId: first.id });
        const otherOp = await store.create({ operation: 'crop', input: {}, owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h1' });
        expect(otherOp).toEqual({ outcome: 'mismatch', jobId: first.id });
        expect((await store.counts()).queued).toBe(1);
      });

      it('scopes keys by owner, and jobs without a key are never merged', async () => {
        const a = await submit({ owner: 'svc-a', idempotencyKey: 'k1', requestHash: 'h1' });
        const b = await submit({ owner: 'svc-b', idempotencyKey: 'k1', requestHash: 'h1' });
        const anonymous = await submit({ idempotencyKey: 'k1', requestHash: 'h1' });
        expect(new Set([a.id, b.id, anonymous.id]).size).toBe(3);
        const anonymousAgain = await store.create({ operation: 'resize', input: { n: 1 }, idempotencyKey: 'k1', requestHash: 'h1' });
        expect(anonymousAgain).toMatchObject({ outcome: 'existing', job: { id: anonymous.id } });
        const plain1 = await submit();
        const plain2 = await submit();
        expect(plain1.id).not.toBe(plain2.id);
      });

      it('never creates a second job when the same key is submitted concurrently', async () => {
        const target = await peer();
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            (i % 2 === 0 ? store : target).create({ operation: 'resize', input: {}, owner: 'o', idempotencyKey: 'race', requestHash: 'h' }),
          ),
        );
        const ids = new Set(results.map((r) => (r.outcome === 'created' || r.outcome === 'existing' ? r.job.id : r.outcome)));
        expect(ids.size).toBe(1);
        expect(results.filter((r) => r.outcome === 'created')).toHaveLength(1);
        expect((await store.counts()).queued).toBe(1);
      });

      it('lets a key be used again once the job it created expired', async () => {
        const first = await submit({ owner: 'o', idempotencyKey: 'k', requestHash: 'h' });
        const claim = await claimOne();
        await store.complete(claim.lease, { ok: true });
        advance(RETENTION_MS);
        const second = await store.create({ operation: 'resize', input: {}, owner: 'o', idempotencyKey: 'k', requestHash: 'h' });
        expect(second.outcome).toBe('created');
        expect(second.outcome === 'created' && second.job.id).not.toBe(first.id);
        expect(await store.get(first.id)).toEqual({ state: 'gone', id: first.id });
      });
    });

    describe('bounded queue and counts', () => {
      it('answers full when maxQueued jobs of the operation are queued', async () => {
        await submit({ maxQueued: 2 });
        await submit({ maxQueued: 2 });
        expect(await store.create({ operation: 'resize', input: {}, maxQueued: 2 })).toEqual({ outcome: 'full' });
        expect((await store.create({ operation: 'crop', input: {}, maxQueued: 2 })).outcome).toBe('created');
        await claimOne();
        expect((await store.create({ operation: 'resize', input: {}, maxQueued: 2 })).outcome).toBe('created');
      });

      it('answers an idempotent retry with its job even when the queue is full', async () => {
        const job = await submit({ idempotencyKey: 'k', requestHash: 'h', maxQueued: 1 });
        expect(await store.create({ operation: 'resize', input: {}, idempotencyKey: 'k', requestHash: 'h', maxQueued: 1 })).toEqual({
          outcome: 'existing',
          job,
        });
      });

      it('counts queued and running jobs per operation and in all', async () => {
        await submit();
        await submit();
        await submit({ operation: 'crop' });
        await store.claim({ workerId: 'w', leaseMs: LEASE_MS, operations: ['resize'] });
        expect(await store.counts('resize')).toEqual({ queued: 1, running: 1 });
        expect(await store.counts('crop')).toEqual({ queued: 1, running: 0 });
        expect(await store.counts()).toEqual({ queued: 2, running: 1 });
        expect(await store.counts('none')).toEqual({ queued: 0, running: 0 });
      });
    });

    describe('claim and lease', () => {
      it('claims the oldest due job, running with a lease', async () => {
        const first = await submit({ input: { n: 1 } });
        advance(1);
        await submit({ input: { n: 2 } });
        const claim = await claimOne(store, 'worker-a');
        expect(claim.lease).toEqual({ jobId: first.id, workerId: 'worker-a', attempt: 1 });
        expect(claim.job).toMatchObject({
          id: first.id,
          status: 'running',
          attempts: 1,
          version: 2,
          startedAt: now,
          updatedAt: now,
          leaseOwner: 'worker-a',
          leaseExpiresAt: now + LEASE_MS,
          input: { n: 1 },
        });
        expect(found(await store.get(first.id))).toEqual(claim.job);
      });

      it('claims several at once up to the limit, in order, and nothing twice', async () => {
        const jobs: JobRecord[] = [];
        for (let i = 0; i < 5; i++) {
          jobs.push(await submit({ input: { i } }));
          advance(1);
        }
        const batch = await store.claim({ workerId: 'w', leaseMs: LEASE_MS, limit: 3 });
        expect(batch.map((c) => c.job.id)).toEqual(jobs.slice(0, 3).map((j) => j.id));
        const rest = await store.claim({ workerId: 'w', leaseMs: LEASE_MS, limit: 10 });
        expect(rest.map((c) => c.job.id)).toEqual(jobs.slice(3).map((j) => j.id));
        expect(await store.claim({ workerId: 'w', leaseMs: LEASE_MS, limit: 10 })).toEqual([]);
      });

      it('waits for runAt', async () => {
        const later = await submit({ runAt: now + 5_000 });
        expect(await store.claim({ workerId: 'w', leaseMs: LEASE_MS })).toEqual([]);
        advance(5_000);
        expect((await claimOne()).job.id).toBe(later.id);
      });

      it('claims only the operations asked for', async () => {
        await submit({ operation: 'resize' });
        const crop = await submit({ operation: 'crop' });
        const claims = await store.claim({ workerId: 'w', leaseMs: LEASE_MS, limit: 5, operations: ['crop'] });
        expect(claims.map((c) => c.job.id)).toEqual([crop.id]);
      });

      it('keeps at most `concurrency` jobs of an operation running across workers', async () => {
        for (let i = 0; i < 4; i++) await submit();
        await submit({ operation: 'crop' });
        const first = await store.claim({ workerId: 'w1', leaseMs: LEASE_MS, limit: 10, concurrency: { resize: 2 } });
        expect(first.filter((c) => c.job.operation === 'resize')).toHaveLength(2);
        expect(first.filter((c) => c.job.operation === 'crop')).toHaveLength(1);
        expect(await store.claim({ workerId: 'w2', leaseMs: LEASE_MS, limit: 10, concurrency: { resize: 2 } })).toEqual([]);
        const resize = first.find((c) => c.job.operation === 'resize')!;
        await store.complete(resize.lease, null);
        const next = await store.claim({ workerId: 'w2', leaseMs: LEASE_MS, limit: 10, concurrency: { resize: 2 } });
        expect(next).toHaveLength(1);
      });

      it('extends the lease on heartbeat, so the job is not taken over', async () => {
        await submit();
        const claim = await claimOne();
        advance(LEASE_MS - 100);
        expect(await store.heartbeat(claim.lease, LEASE_MS)).toBe('held');
        advance(500);
        expect(await store.claim({ workerId: 'worker-b', leaseMs: LEASE_MS })).toEqual([]);
        const job = found(await store.get(claim.job.id));
        expect(job.leaseExpiresAt).toBe(now - 500 + LEASE_MS);
        expect(job.version).toBe(claim.job.version);
      });

      it('takes over a running job whose lease expired; the old lease is lost', async () => {
        const job = await submit();
        const first = await claimOne(store, 'worker-a');
        advance(LEASE_MS);
        const second = await claimOne(store, 'worker-b');
        expect(second.job).toMatchObject({ id: job.id, status: 'running', attempts: 2, leaseOwner: 'worker-b' });
        expect(second.lease).toEqual({ jobId: job.id, workerId: 'worker-b', attempt: 2 });
        expect(await store.heartbeat(first.lease, LEASE_MS)).toBe('lost');
        expect(await store.progress(first.lease, 50)).toBe('lost');
        expect(await store.complete(first.lease, 'stale')).toBe('lost');
        expect(await store.fail(first.lease, new SwitchboardError('SB_HANDLER_FAILED').toProblem())).toBe('lost');
        expect(found(await store.get(job.id))).toMatchObject({ status: 'running', attempts: 2 });
        expect(await store.complete(second.lease, 'fresh')).toBe('succeeded');
        expect(found(await store.get(job.id))).toMatchObject({ status: 'succeeded', result: 'fresh' });
      });

      it('fails a job whose lease expired on its last attempt, with the reason', async () => {
        const job = await submit({ maxAttempts: 2 });
        await claimOne(store, 'a');
        advance(LEASE_MS);
        await claimOne(store, 'b');
        advance(LEASE_MS);
        expect(await store.claim({ workerId: 'c', leaseMs: LEASE_MS })).toEqual([]);
        const failed = found(await store.get(job.id));
        expect(failed).toMatchObject({ status: 'failed', attempts: 2, finishedAt: now, expiresAt: now + RETENTION_MS });
        expect(failed.error).toMatchObject({ code: 'SB_JOB_FAILED', status: 500 });
        expect(failed.error?.detail).toMatch(/lease expired/);
      });

      it('answers lost for a lease naming another worker or attempt', async () => {
        await submit();
        const claim = await claimOne();
        expect(await store.heartbeat({ ...claim.lease, workerId: 'intruder' }, LEASE_MS)).toBe('lost');
        expect(await store.heartbeat({ ...claim.lease, attempt: 2 }, LEASE_MS)).toBe('lost');
        expect(await store.heartbeat({ ...claim.lease, jobId: 'nope' }, LEASE_MS)).toBe('lost');
      });

      it('never hands one job to two concurrent claimers', async () => {
        const other = await peer();
        for (let i = 0; i < parallelJobs; i++) await submit({ input: { i } });
        const claimed: string[] = [];
        const claimers = Array.from({ length: 8 }, async (_, i) => {
          const target = i % 2 === 0 ? store : other;
          for (;;) {
            const claims = await target.claim({ workerId: `w${i}`, leaseMs: 60_000, limit: 3 });
            if (claims.length === 0) return;
            for (const c of claims) claimed.push(c.job.id);
          }
        });
        await Promise.all(claimers);
        expect(claimed).toHaveLength(parallelJobs);
        expect(new Set(claimed).size).toBe(parallelJobs);
        expect(await store.counts()).toEqual({ queued: 0, running: parallelJobs });
      });
    });

    describe('progress, complete, fail', () => {
      it('records progress and bumps the version', async () => {
        await submit();
        const claim = await claimOne();
        advance(10);
        expect(await store.progress(claim.lease, { percent: 40, step: 'resizing' })).toBe('held');
        const job = found(await store.get(claim.job.id));
        expect(job).toMatchObject({ progress: { percent: 40, step: 'resizing' }, version: claim.job.version + 1, updatedAt: now });
      });

      it('completes with the result and sets expiresAt', async () => {
        await submit();
        const claim = await claimOne();
        advance(20);
        expect(await store.complete(claim.lease, { url: '/x.png', sizes: [1, 2] })).toBe('succeeded');
        const job = found(await store.get(claim.job.id));
        expect(job).toMatchObject({
          status: 'succeeded',
          result: { url: '/x.png', sizes: [1, 2] },
          finishedAt: now,
          expiresAt: now + RETENTION_MS,
          version: claim.job.version + 1,
        });
        expect(await store.complete(claim.lease, 'again')).toBe('lost');
        expect(await store.heartbeat(claim.lease, LEASE_MS)).toBe('lost');
      });

      it('fails with the problem', async () => {
        await submit();
        const claim = await claimOne();
        const problem = new SwitchboardError('SB_HANDLER_FAILED', { detail: 'boom' }).toProblem();
        expect(await store.fail(claim.lease, problem)).toBe('failed');
        const job = found(await store.get(claim.job.id));
        expect(job).toMatchObject({ status: 'failed', error: problem, finishedAt: now, expiresAt: now + RETENTION_MS });
      });

      it('queues a retry after the delay while attempts are left, then fails', async () => {
        const created = await submit({ maxAttempts: 2 });
        const first = await claimOne();
        const problem = new SwitchboardError('SB_UNAVAILABLE').toProblem();
        expect(await store.fail(first.lease, problem, { retryDelayMs: 300 })).toBe('retrying');
        const queued = found(await store.get(created.id));
        expect(queued).toMatchObject({ status: 'queued', runAt: now + 300, attempts: 1, error: problem });
        expect(queued.expiresAt).toBeUndefined();
        expect(await store.claim({ workerId: 'w', leaseMs: LEASE_MS })).toEqual([]);
        advance(300);
        const second = await claimOne();
        expect(second.lease.attempt).toBe(2);
        expect(await store.fail(second.lease, problem, { retryDelayMs: 300 })).toBe('failed');
        expect(found(await store.get(created.id)).status).toBe('failed');
      });
    });

    describe('release', () => {
      it('hands a running job back without consuming an attempt; the old lease is lost', async () => {
        if (store.release === undefined) throw new Error(`${name} has no release`);
        const job = await submit({ maxAttempts: 1 });
        const claim = await claimOne();
        advance(10);
        expect(await store.release(claim.lease)).toBe('released');
        const released = found(await store.get(job.id));
        expect(released).toMatchObject({ status: 'queued', attempts: 0, version: 3, runAt: now, updatedAt: now });
        expect(released.leaseOwner).toBeUndefined();
        expect(released.startedAt).toBeUndefined();
        expect(await store.complete(claim.lease, 'late')).toBe('lost');
        expect(await store.release(claim.lease)).toBe('lost');
        // Its only attempt is still there: the next claim runs it.
        const again = await claimOne(store, 'worker-b');
        expect(again.job).toMatchObject({ id: job.id, status: 'running', attempts: 1 });
        expect(await store.complete(again.lease, 'done')).toBe('succeeded');
      });

      it('ends a released job canceled when its cancel was requested', async () => {
        if (store.release === undefined) throw new Error(`${name} has no release`);
        const job = await submit();
        const claim = await claimOne();
        await store.cancel(job.id);
        expect(await store.release(claim.lease)).toBe('canceled');
        expect(found(await store.get(job.id))).toMatchObject({ status: 'canceled', error: { code: 'SB_JOB_CANCELED' } });
      });
    });

    describe('cancel', () => {
      it('cancels a queued job at once', async () => {
        const job = await submit();
        const result = await store.cancel(job.id);
        expect(result).toMatchObject({ outcome: 'canceled', job: { status: 'canceled', version: 2, finishedAt: now } });
        const canceled = found(await store.get(job.id));
        expect(canceled.error).toMatchObject({ code: 'SB_JOB_CANCELED' });
        expect(canceled.expiresAt).toBe(now + RETENTION_MS);
        expect(await store.claim({ workerId: 'w', leaseMs: LEASE_MS })).toEqual([]);
      });

      it('asks a running job to stop; its worker sees it and the job ends canceled', async () => {
        const job = await submit();
        const claim = await claimOne();
        const result = await store.cancel(job.id);
        expect(result).toMatchObject({ outcome: 'cancel-requested', job: { status: 'running', cancelRequested: true, version: 3 } });
        expect((await store.cancel(job.id)).outcome).toBe('cancel-requested');
        expect(found(await store.get(job.id)).version).toBe(3);
        expect(await store.heartbeat(claim.lease, LEASE_MS)).toBe('cancel-requested');
        expect(await store.progress(claim.lease, 90)).toBe('cancel-requested');
        expect(await store.fail(claim.lease, new SwitchboardError('SB_ABORTED').toProblem(), { retryDelayMs: 0 })).toBe('canceled');
        expect(found(await store.get(job.id))).toMatchObject({ status: 'canceled', error: { code: 'SB_JOB_CANCELED' } });
      });

      it('lets a completion win over a pending cancel request', async () => {
        await submit();
        const claim = await claimOne();
        await store.cancel(claim.job.id);
        expect(await store.complete(claim.lease, 'done')).toBe('succeeded');
        expect(found(await store.get(claim.job.id))).toMatchObject({ status: 'succeeded', result: 'done' });
      });

      it('cancels a running job whose worker died instead of running it again', async () => {
        const job = await submit();
        await claimOne();
        await store.cancel(job.id);
        advance(LEASE_MS);
        expect(await store.claim({ workerId: 'w2', leaseMs: LEASE_MS })).toEqual([]);
        expect(found(await store.get(job.id)).status).toBe('canceled');
      });

      it('leaves a finished job alone, and tells missing from gone', async () => {
        const job = await submit();
        const claim = await claimOne();
        await store.complete(claim.lease, 1);
        const result = await store.cancel(job.id);
        expect(result).toMatchObject({ outcome: 'finished', job: { status: 'succeeded', version: 3 } });
        expect(await store.cancel('no-such-job')).toEqual({ outcome: 'missing' });
        advance(RETENTION_MS);
        expect(await store.cancel(job.id)).toEqual({ outcome: 'gone' });
      });
    });

    describe('versions and callbacks', () => {
      it('increases the version by one on every visible change', async () => {
        const job = await submit();
        const versions = [job.version];
        const claim = await claimOne();
        versions.push(claim.job.version);
        await store.progress(claim.lease, 1);
        versions.push(found(await store.get(job.id)).version);
        await store.progress(claim.lease, 2);
        versions.push(found(await store.get(job.id)).version);
        await store.complete(claim.lease, 'r');
        versions.push(found(await store.get(job.id)).version);
        await store.setCallback(job.id, { url: 'https://a.example/cb', state: 'delivered', attempts: 1, lastAttemptAt: now });
        versions.push(found(await store.get(job.id)).version);
        expect(versions).toEqual([1, 2, 3, 4, 5, 6]);
      });

      it('keeps the callback delivery state', async () => {
        const job = await submit({ callbackUrl: 'https://a.example/cb' });
        const state = {
          url: 'https://a.example/cb',
          state: 'failed',
          attempts: 3,
          lastAttemptAt: now,
          nextAttemptAt: now + 10,
          lastError: 'HTTP 500',
        } as const;
        expect(await store.setCallback(job.id, state)).toBe(true);
        expect(found(await store.get(job.id)).callback).toEqual(state);
        expect(await store.setCallback('no-such-job', state)).toBe(false);
      });
    });

    describe('waitForChange', () => {
      it('answers at once when the job is already newer', async () => {
        const job = await submit();
        const lookup = await within(store.waitForChange(job.id, 0, 60_000), 2_000, 'an immediate answer');
        expect(found(lookup).version).toBe(1);
      });

      it('wakes on a change made through the same store', async () => {
        const job = await submit();
        const waiting = store.waitForChange(job.id, job.version, 60_000);
        const change = delay(20).then(() => store.cancel(job.id));
        const lookup = await within(waiting, changeTimeoutMs, 'the wake-up');
        expect((await change).outcome).toBe('canceled');
        expect(found(lookup)).toMatchObject({ status: 'canceled', version: 2 });
      });

      it('wakes on a change made through another connection', async () => {
        const other = await peer();
        const job = await submit();
        const waiting = store.waitForChange(job.id, job.version, 60_000);
        const change = delay(20).then(() => other.claim({ workerId: 'peer', leaseMs: LEASE_MS }));
        const lookup = await within(waiting, changeTimeoutMs, 'the wake-up');
        expect(await change).toHaveLength(1);
        expect(found(lookup)).toMatchObject({ status: 'running', leaseOwner: 'peer' });
      });

      it('times out with the job unchanged', async () => {
        const job = await submit();
        const lookup = await store.waitForChange(job.id, job.version, 50);
        expect(found(lookup)).toEqual(job);
      });

      it('answers missing and gone without waiting', async () => {
        expect(await within(store.waitForChange('no-such-job', 0, 60_000), 2_000, 'the answer')).toEqual({
          state: 'missing',
          id: 'no-such-job',
        });
        const job = await submit();
        await store.cancel(job.id);
        advance(RETENTION_MS);
        expect(await within(store.waitForChange(job.id, 2, 60_000), 2_000, 'the answer')).toEqual({ state: 'gone', id: job.id });
      });

      it('rejects with the reason when aborted', async () => {
        const job = await submit();
        const controller = new AbortController();
        const waiting = store.waitForChange(job.id, job.version, 60_000, controller.signal);
        setTimeout(() => controller.abort(new Error('client left')), 10);
        await expect(within(waiting, 2_000, 'the abort')).rejects.toThrow('client left');
      });
    });

    describe('retention', () => {
      it('answers gone after retention, through purge, until the tombstone is purged', async () => {
        const job = await submit();
        const keep = await submit();
        const claim = await claimOne();
        await store.complete(claim.lease, 'r');
        advance(RETENTION_MS - 1);
        expect((await store.get(job.id)).state).toBe('found');
        expect(await store.purge()).toBe(0);
        advance(1);
        expect(await store.get(job.id)).toEqual({ state: 'gone', id: job.id });
        expect(await store.purge()).toBe(1);
        expect(await store.get(job.id)).toEqual({ state: 'gone', id: job.id });
        expect(found(await store.get(keep.id)).status).toBe('queued');
        expect(await store.purge()).toBe(0);
        advance(TOMBSTONE_MS);
        await store.purge();
        expect(await store.get(job.id)).toEqual({ state: 'missing', id: job.id });
      });

      it('keeps a job with its own retention for that long', async () => {
        const job = await submit({ retentionMs: 5_000 });
        await store.cancel(job.id);
        advance(4_999);
        expect((await store.get(job.id)).state).toBe('found');
        advance(1);
        expect((await store.get(job.id)).state).toBe('gone');
      });
    });

    describe('failures', () => {
      it('rejects with SB_CLOSED once closed', async () => {
        const other = await factoryPeerOrSelf();
        await other.close();
        const error = await other.get('x').catch((e: unknown) => e);
        expect(isSwitchboardError(error, 'SB_CLOSED')).toBe(true);
      });
    });

    async function factoryPeerOrSelf(): Promise<JobStore> {
      if (harness.openPeer) return harness.openPeer();
      // Without peers the store itself is closed; closing twice must be harmless.
      return store;
    }
  });
}
