import { randomBytes } from 'node:crypto';
import { createPostgresJobStore } from '@switchboard/postgres';
import pg from 'pg';
import { describeJobsEndToEnd } from './jobs-cases.js';

const connectionString = 'postgres://postgres@127.0.0.1:5432/test';

describeJobsEndToEnd('postgres', async () => {
  const table = `jobs_http_${randomBytes(6).toString('hex')}`;
  const store = createPostgresJobStore({ connectionString, table });
  const others: Array<{ close(): Promise<void> }> = [];
  return {
    store,
    openPeer: async () => createPostgresJobStore({ connectionString, table }),
    unreachable: () => {
      const lost = createPostgresJobStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', table });
      others.push(lost);
      return lost;
    },
    cleanup: async () => {
      for (const other of others) await other.close().catch(() => {});
      await store.close();
      const client = new pg.Client({ connectionString });
      await client.connect();
      await client.query(`DROP TABLE IF EXISTS ${table}, ${table}_gone CASCADE`);
      await client.end();
    },
  };
});
