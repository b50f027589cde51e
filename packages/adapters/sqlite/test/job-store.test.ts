import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSwitchboardError } from '@switchboard/core';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { describeJobStoreConformance } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';

describeJobStoreConformance('sqlite', async (context) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-jobs-'));
  const path = join(dir, 'jobs.db');
  const options = { ...context, path, pollIntervalMs: 10 };
  return {
    store: createSqliteJobStore(options),
    openPeer: async () => createSqliteJobStore(options),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('sqlite job store', () => {
  it('uses WAL and keeps jobs across a reopen of the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-jobs-'));
    try {
      const path = join(dir, 'jobs.db');
      const first = createSqliteJobStore({ path, table: 'jobs_a' });
      const created = await first.create({ operation: 'resize', input: { n: 1 } });
      await first.close();
      const db = new Database(path);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
      const second = createSqliteJobStore({ path, table: 'jobs_a' });
      const lookup = await second.get(created.outcome === 'created' ? created.job.id : '');
      expect(lookup).toMatchObject({ state: 'found', job: { status: 'queued', input: { n: 1 } } });
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('works on a database the caller opened, and leaves it open', async () => {
    const db = new Database(':memory:');
    const store = createSqliteJobStore({ database: db, table: 'my_jobs' });
    const created = await store.create({ operation: 'resize', input: null });
    expect(created.outcome).toBe('created');
    await store.close();
    expect(db.prepare('SELECT count(*) AS n FROM my_jobs').get()).toEqual({ n: 1 });
    db.close();
  });

  it('surfaces a failing database as SB_STORE_UNAVAILABLE and creates nothing', async () => {
    const db = new Database(':memory:');
    const store = createSqliteJobStore({ database: db, table: 'jobs_b' });
    db.exec(`CREATE TRIGGER jobs_b_refuse BEFORE INSERT ON jobs_b BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    const error = await store.create({ operation: 'resize', input: {}, idempotencyKey: 'k', requestHash: 'h' }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    expect(db.prepare('SELECT count(*) AS n FROM jobs_b').get()).toEqual({ n: 0 });
    await store.close();
    db.close();
  });

  it('keeps the queued count of the bounded queue through claims, releases, cancels and batches', async () => {
    const db = new Database(':memory:');
    const store = createSqliteJobStore({ database: db, table: 'jobs_c' });
    const create = (operation = 'resize') => store.create({ operation, input: {}, maxQueued: 2 });
    // Three creates of one turn share a batch: the third sees the two before it.
    const batch = await Promise.all([create(), create(), create()]);
    expect(batch.map((created) => created.outcome)).toEqual(['created', 'created', 'full']);
    expect((await create('crop')).outcome).toBe('created');
    const [claim] = await store.claim({ workerId: 'w', leaseMs: 10_000, operations: ['resize'] });
    expect((await create()).outcome).toBe('created');
    expect((await create()).outcome).toBe('full');
    await store.release!(claim!.lease);
    expect(await store.counts('resize')).toEqual({ queued: 3, running: 0 });
    const queued = batch[1]!.outcome === 'created' ? batch[1].job.id : '';
    expect((await store.cancel(queued)).outcome).toBe('canceled');
    expect(await store.counts('resize')).toEqual({ queued: 2, running: 0 });
    expect((await create()).outcome).toBe('full');
    expect(db.prepare('SELECT operation, n FROM jobs_c_backlog ORDER BY operation').all()).toEqual([
      { operation: 'crop', n: 1 },
      { operation: 'resize', n: 2 },
    ]);
    await store.close();
    db.close();
  });

  it('fills the queued count of a table made before it existed', async () => {
    const db = new Database(':memory:');
    const first = createSqliteJobStore({ database: db, table: 'jobs_d' });
    await first.create({ operation: 'resize', input: {} });
    await first.create({ operation: 'resize', input: {} });
    await first.close();
    db.exec('DROP TRIGGER jobs_d_backlog_insert; DROP TRIGGER jobs_d_backlog_update; DROP TRIGGER jobs_d_backlog_delete');
    db.exec('DROP TABLE jobs_d_backlog');
    const second = createSqliteJobStore({ database: db, table: 'jobs_d' });
    expect(await second.create({ operation: 'resize', input: {}, maxQueued: 2 })).toEqual({ outcome: 'full' });
    expect((await second.create({ operation: 'resize', input: {}, maxQueued: 3 })).outcome).toBe('created');
    expect(db.prepare('SELECT n FROM jobs_d_backlog WHERE operation = ?').get('resize')).toEqual({ n: 3 });
    await second.close();
    db.close();
  });

  it('hands a new job to the worker that asks for it: stored claimed, answered as accepted', async () => {
    const db = new Database(':memory:');
    const store = createSqliteJobStore({ database: db, table: 'jobs_e' });
    const claimFor = { workerId: 'w1', leaseMs: 10_000 };
    const created = await store.create({ operation: 'resize', input: { n: 1 }, claimFor, maxQueued: 1 });
    if (created.outcome !== 'created' || created.claim === undefined) throw new Error(`expected a claim, got ${created.outcome}`);
    expect(created.job).toMatchObject({ status: 'queued', version: 1, attempts: 0 });
    expect(created.claim.lease).toEqual({ jobId: created.job.id, workerId: 'w1', attempt: 1 });
    expect(created.claim.job).toMatchObject({ id: created.job.id, status: 'running', version: 2, attempts: 1, leaseOwner: 'w1' });
    const stored = await store.get(created.job.id);
    expect(stored.state === 'found' && stored.job).toMatchObject({ status: 'running', version: 2, attempts: 1, leaseOwner: 'w1' });
    // Not queued: no other worker claims it, and it does not fill the bounded queue.
    expect(await store.claim({ workerId: 'w2', leaseMs: 10_000, limit: 5 })).toEqual([]);
    expect((await store.create({ operation: 'resize', input: {}, maxQueued: 1 })).outcome).toBe('created');
    expect(await store.complete(created.claim.lease, { ok: true })).toBe('succeeded');
    // A job due later is queued as usual.
    const later = await store.create({ operation: 'resize', input: {}, claimFor, runAt: Date.now() + 60_000 });
    expect(later.outcome === 'created' && later.claim).toBe(undefined);
    expect(later.outcome === 'created' && later.job.status).toBe('queued');
    await store.close();
    db.close();
  });

  it('refuses an unsafe table name', () => {
    expect(() => createSqliteJobStore({ path: ':memory:', table: 'jobs; DROP TABLE x' })).toThrow(/Invalid job table name/);
  });
});
