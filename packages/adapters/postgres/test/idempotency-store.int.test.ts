import { randomBytes } from 'node:crypto';
import { describeIdempotencyStoreConformance } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll } from 'vitest';
import { createPostgresIdempotencyStore } from '../src/idempotency-store.js';

const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString, max: 2 });

afterAll(async () => {
  await admin.end();
});

describeIdempotencyStoreConformance(
  'postgres',
  (options) => {
    const table = `sbt_idem_${randomBytes(5).toString('hex')}`;
    return {
      store: createPostgresIdempotencyStore({ connectionString, table, ...options }),
      second: createPostgresIdempotencyStore({ connectionString, table, ...options }),
      async teardown() {
        await admin.query(`DROP TABLE IF EXISTS ${table}, ${table}_totals`);
      },
    };
  },
  { shared: true },
);
