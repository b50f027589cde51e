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

  it('refuses an unsafe table name', () => {
    expect(() => createSqliteJobStore({ path: ':memory:', table: 'jobs; DROP TABLE x' })).toThrow(/Invalid job table name/);
  });
});
