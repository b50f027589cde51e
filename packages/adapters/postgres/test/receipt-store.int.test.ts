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

describeReceiptStoreConformance(
  'postgres',
  ({ clock }) => {
    const table = randomTable();
    return {
      store: createPostgresReceiptStore({ connectionString, table, clock }),
      second: createPostgresReceiptStore({ connectionString, table, clock }),
      async teardown() {
        await admin.query(`DROP TABLE IF EXISTS ${table}`);
      },
    };
  },
  {
    unholdable: [
      { label: 'a NUL in the MessageId (22021)', update: { messageId: 'a\u0000b' } },
      { label: 'a NUL in the source (22021)', update: { source: '/s\u0000' } },
      { label: 'a NUL in the type (22021)', update: { type: 't\u0000' } },
      // Random base64 does not compress: the primary-key index row is over 2704 bytes (54000).
      { label: 'a group too long for an index row (54000)', update: { group: randomBytes(6000).toString('base64') } },
    ],
  },
);

describe('PostgresReceiptStore', () => {
  it('works on a pool the caller owns, leaves it open, and creates its schema once under concurrency', async () => {
    const table = randomTable();
    const pool = new pg.Pool({ connectionString, max: 4 });
    const stores = Array.from({ length: 3 }, () => createPostgresReceiptStore({ pool, table }));
    const id = newMessageId();
    const outcomes = await Promise.all(
      stores.map((store, i) => store.record([{ group: `g${i}`, source: '/s', messageId: id, state: 'received' }])),
    );
    expect(outcomes).toEqual([['created'], ['created'], ['created']]);
    for (const store of stores) await store.close();
    const { rows } = await pool.query(`SELECT grp FROM ${table} ORDER BY grp`);
    expect(rows.map((r) => r.grp)).toEqual(['g0', 'g1', 'g2']);
    await pool.end();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('refuses a table of the earlier layout (keyed by message_id, grp) with SB_CONFIG_INVALID', async () => {
    const table = randomTable();
    await admin.query(`CREATE TABLE ${table} (message_id TEXT NOT NULL, grp TEXT NOT NULL, source TEXT, PRIMARY KEY (message_id, grp))`);
    const store = createPostgresReceiptStore({ connectionString, table });
    const error = await store.get({ group: 'g', source: '/s', messageId: 'm' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SB_CONFIG_INVALID', detail: expect.stringContaining(table) });
    await store.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('takes a 6000-character MessageId as a permanent refusal before any round trip, never as unavailable', async () => {
    const table = randomTable();
    const store = createPostgresReceiptStore({ connectionString, table });
    const messageId = 'x'.repeat(6000);
    const error = await store.claim({ group: 'g', source: '/s', messageId, owner: 'w', leaseMs: 1000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SB_STORE_REFUSED', retryable: false });
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(false);
    await store.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('refuses a table name that is not a plain identifier', () => {
    expect(() => createPostgresReceiptStore({ connectionString, table: 'x; DROP TABLE y' })).toThrow(
      expect.objectContaining({ code: 'SB_CONFIG_INVALID' }),
    );
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createPostgresReceiptStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', table: randomTable() });
    const error = await store
      .claim({ group: 'g', source: '/s', messageId: newMessageId(), owner: 'w', leaseMs: 1000 })
      .catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
