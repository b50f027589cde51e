import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresDeadLetterStore } from '../src/dead-letter-store.js';

const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString, max: 2 });

afterAll(async () => {
  await admin.end();
});

function randomTable(): string {
  return `sbt_dlq_${randomBytes(5).toString('hex')}`;
}

describeDeadLetterStoreConformance(
  'postgres',
  ({ clock }) => {
    const table = randomTable();
    return {
      store: createPostgresDeadLetterStore({ connectionString, table, clock }),
      second: createPostgresDeadLetterStore({ connectionString, table, clock }),
      async teardown() {
        await admin.query(`DROP TABLE IF EXISTS ${table}`);
      },
    };
  },
  {
    unholdable: [
      { label: 'a NUL in the MessageId (22021)', entry: { messageId: 'a\u0000b' } },
      { label: 'a NUL in the source (22021)', entry: { source: '/s\u0000' } },
      { label: 'a group too long for an index row (54000)', entry: { group: randomBytes(6000).toString('base64') } },
    ],
  },
);

describe('PostgresDeadLetterStore', () => {
  it('adds the same message concurrently from two connections as one entry', async () => {
    const table = randomTable();
    const [a, b] = [createPostgresDeadLetterStore({ connectionString, table }), createPostgresDeadLetterStore({ connectionString, table })];
    const messageId = newMessageId();
    const entry = (attempt: number) => ({
      messageId,
      source: '/s',
      topic: 't',
      group: 'g',
      headers: {},
      body: Uint8Array.from([attempt]),
      reason: 'max-attempts',
      attempts: [{ attempt, at: attempt, error: { type: 'about:blank', title: 'x', status: 500, code: 'SB_HANDLER_FAILED' } }],
    });
    const added = await Promise.all([a.add(entry(1)), b.add(entry(2)), a.add(entry(3)), b.add(entry(4))]);
    expect(new Set(added.map((e) => e.id)).size).toBe(1);
    const got = await a.get(added[0]?.id as string);
    expect(got?.attempts.map((x) => x.attempt)).toEqual([1, 2, 3, 4]);
    await a.close();
    await b.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('refuses a table of the earlier layout (no source column) with SB_CONFIG_INVALID', async () => {
    const table = randomTable();
    await admin.query(`CREATE TABLE ${table} (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, grp TEXT NOT NULL)`);
    const store = createPostgresDeadLetterStore({ connectionString, table });
    const error = await store.list().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SB_CONFIG_INVALID' });
    await store.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createPostgresDeadLetterStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', table: randomTable() });
    const error = await store.list().catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
