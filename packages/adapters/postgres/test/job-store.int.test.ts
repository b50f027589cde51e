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
});
