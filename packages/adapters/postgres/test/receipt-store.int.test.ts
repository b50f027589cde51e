import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { describeReceiptStoreConformance } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresReceiptStore } from '../src/receipt-store.js';

const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString, max: 2 });

afterAll(async () => {
  await admin.end();
});

function randomTable(): string {
  return `sbt_receipts_${randomBytes(5).toString('hex')}`;
}

describeReceiptStoreConformance('postgres', ({ clock }) => {
  const table = randomTable();
  return {
    store: createPostgresReceiptStore({ connectionString, table, clock }),
    second: createPostgresReceiptStore({ connectionString, table, clock }),
    async teardown() {
      await admin.query(`DROP TABLE IF EXISTS ${table}`);
    },
  };
});

describe('PostgresReceiptStore', () => {
  it('works on a pool the caller owns, leaves it open, and creates its schema once under concurrency', async () => {
    const table = randomTable();
    const pool = new pg.Pool({ connectionString, max: 4 });
    const stores = Array.from({ length: 3 }, () => createPostgresReceiptStore({ pool, table }));
    const id = newMessageId();
    const outcomes = await Promise.all(stores.map((store, i) => store.record([{ group: `g${i}`, messageId: id, state: 'received' }])));
    expect(outcomes).toEqual([['created'], ['created'], ['created']]);
    for (const store of stores) await store.close();
    const { rows } = await pool.query(`SELECT grp FROM ${table} ORDER BY grp`);
    expect(rows.map((r) => r.grp)).toEqual(['g0', 'g1', 'g2']);
    await pool.end();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('refuses a table name that is not a plain identifier', () => {
    expect(() => createPostgresReceiptStore({ connectionString, table: 'x; DROP TABLE y' })).toThrow(
      expect.objectContaining({ code: 'SB_CONFIG_INVALID' }),
    );
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createPostgresReceiptStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', table: randomTable() });
    const error = await store.claim({ group: 'g', messageId: newMessageId(), owner: 'w', leaseMs: 1000 }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
