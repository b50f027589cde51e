import { randomBytes } from 'node:crypto';
import { isSwitchboardError } from '@switchboard/core';
import { createPostgresJobStore } from '@switchboard/postgres';
import { describeJobStoreConformance } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString, max: 2 });

afterAll(async () => {
  await admin.end();
});

function randomTable(): string {
  return `sbt_jobs_${randomBytes(5).toString('hex')}`;
}

async function dropTable(table: string): Promise<void> {
  await admin.query(`DROP TABLE IF EXISTS ${table}, ${table}_gone`);
}

describeJobStoreConformance('postgres', async (context) => {
  const table = randomTable();
  const options = { ...context, connectionString, table };
  return {
    store: createPostgresJobStore(options),
    openPeer: async () => createPostgresJobStore(options),
    cleanup: () => dropTable(table),
  };
});

describe('postgres job store', () => {
  it('works on a pool the caller owns, and leaves it open', async () => {
    const table = randomTable();
    const pool = new pg.Pool({ connectionString, max: 3 });
    const store = createPostgresJobStore({ pool, table });
    const created = await store.create({ operation: 'resize', input: { n: 1 } });
    expect(created.outcome).toBe('created');
    await store.close();
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    expect(rows[0]).toEqual({ n: 1 });
    await pool.end();
    await dropTable(table);
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createPostgresJobStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', table: randomTable() });
    const error = await store.create({ operation: 'resize', input: {} }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });

  it('leaves no half-created job when a create fails inside its transaction', async () => {
    const table = randomTable();
    const store = createPostgresJobStore({ connectionString, table });
    await store.counts();
    await admin.query(`ALTER TABLE ${table} ADD CONSTRAINT refuse_big CHECK (length(input) < 20)`);
    const error = await store
      .create({ operation: 'resize', input: { text: 'x'.repeat(50) }, idempotencyKey: 'k', requestHash: 'h' })
      .catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    expect(await store.counts()).toEqual({ queued: 0, running: 0 });
    await store.close();
    await dropTable(table);
  });
  it('answers each create and completion of one batch on its own, as if they came one after another', async () => {
    const table = randomTable();
    const store = createPostgresJobStore({ connectionString, table });
    await store.counts();
    const [first, again, other, bounded1, bounded2, bounded3, plain] = await Promise.all([
      store.create({ operation: 'resize', input: { n: 1 }, idempotencyKey: 'k', requestHash: 'h' }),
      store.create({ operation: 'resize', input: { n: 1 }, idempotencyKey: 'k', requestHash: 'h' }),
      store.create({ operation: 'resize', input: { n: 2 }, idempotencyKey: 'k', requestHash: 'other' }),
      store.create({ operation: 'thumb', input: {}, maxQueued: 2 }),
      store.create({ operation: 'thumb', input: {}, maxQueued: 2 }),
      store.create({ operation: 'thumb', input: {}, maxQueued: 2 }),
      store.create({ operation: 'resize', input: { n: 3 } }),
    ]);
    expect(first.outcome).toBe('created');
    const firstId = first.outcome === 'created' ? first.job.id : '';
    expect(again).toMatchObject({ outcome: 'existing', job: { id: firstId } });
    expect(other).toEqual({ outcome: 'mismatch', jobId: firstId });
    expect([bounded1.outcome, bounded2.outcome, bounded3.outcome]).toEqual(['created', 'created', 'full']);
    expect(plain.outcome).toBe('created');
    expect(await store.counts()).toEqual({ queued: 4, running: 0 });

    const claims = await store.claim({ workerId: 'w', leaseMs: 60_000, limit: 10 });
    expect(claims).toHaveLength(4);
    const [a, b] = claims;
    const outcomes = await Promise.all([
      store.complete(a!.lease, { ok: 1 }),
      store.complete(b!.lease, { ok: 2 }),
      store.complete(a!.lease, { ok: 'twice' }),
      store.complete({ ...b!.lease, workerId: 'someone-else' }, { ok: 3 }),
    ]);
    expect(outcomes).toEqual(['succeeded', 'succeeded', 'lost', 'lost']);
    const lookup = await store.get(a!.lease.jobId);
    expect(lookup).toMatchObject({ state: 'found', job: { status: 'succeeded', result: { ok: 1 }, version: 3 } });
    expect(await store.counts()).toEqual({ queued: 0, running: 2 });
    await store.close();
    await dropTable(table);
  });
});
