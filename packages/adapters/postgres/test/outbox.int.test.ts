import { randomBytes } from 'node:crypto';
import { isSwitchboardError } from '@switchboard/core';
import { describeOutboxConformance, testMessage } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresOutbox } from '../src/outbox.js';

const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString, max: 2 });

afterAll(async () => {
  await admin.end();
});

function randomTable(prefix = 'sbt_outbox'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

describeOutboxConformance('postgres', async ({ clock }) => {
  const table = randomTable();
  const orders = randomTable('sbt_orders');
  // The application's pool: its own rows and the outbox commit in one transaction on it.
  const pool = new pg.Pool({ connectionString, max: 4 });
  await pool.query(`CREATE TABLE ${orders} (seq BIGSERIAL PRIMARY KEY, tag TEXT NOT NULL)`);
  const outbox = createPostgresOutbox({ pool, table, clock });
  return {
    store: outbox,
    second: createPostgresOutbox({ connectionString, table, clock }),
    async transact(tag, messages, options = {}) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO ${orders} (tag) VALUES ($1)`, [tag]);
        await outbox.enqueue(client, messages);
        await client.query(options.rollback === true ? 'ROLLBACK' : 'COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      } finally {
        client.release();
      }
    },
    async appRows() {
      const { rows } = await pool.query<{ tag: string }>(`SELECT tag FROM ${orders} ORDER BY seq`);
      return rows.map((r) => r.tag);
    },
    async teardown() {
      await pool.end();
      await admin.query(`DROP TABLE IF EXISTS ${table}, ${orders}`);
    },
  };
});

describe('PostgresOutbox', () => {
  it('creates its table with ready() and notifies only at commit', async () => {
    const table = randomTable();
    const outbox = createPostgresOutbox({ connectionString, table });
    await outbox.ready();
    const wakes: number[] = [];
    const stop = outbox.onEnqueued(() => wakes.push(Date.now()));
    // The first wake comes once LISTEN is established (commits before it could not be heard).
    await waitUntil(() => wakes.length === 1);
    const client = await admin.connect();
    await client.query('BEGIN');
    await outbox.enqueue(client, [testMessage('t')]);
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    await outbox.enqueue(client, [testMessage('t'), testMessage('t')]);
    await client.query('COMMIT');
    await outbox.enqueue(client, [testMessage('t')]);
    client.release();
    // Notifications arrive in commit order: by the time the last commit's came, a rolled-back one would have too.
    await waitUntil(() => wakes.length >= 3);
    expect(wakes).toHaveLength(3);
    expect(await outbox.pendingCount()).toBe(3);
    stop();
    await outbox.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('surfaces an insert the server refuses for good (a CHECK violation) as SB_STORE_REFUSED, not retryable', async () => {
    const table = randomTable();
    const outbox = createPostgresOutbox({ connectionString, table });
    await outbox.ready();
    await admin.query(`ALTER TABLE ${table} ADD CONSTRAINT small CHECK (length(topic) < 5)`);
    const error = await outbox.enqueue(admin, [testMessage('a-long-topic')]).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_REFUSED')).toBe(true);
    expect(error).toMatchObject({ retryable: false });
    expect(await outbox.pendingCount()).toBe(0);
    await outbox.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });
});

async function waitUntil(predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
