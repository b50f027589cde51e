import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteJobStore } from '@switchboard/sqlite';
import Database from 'better-sqlite3';
import { describeJobsEndToEnd } from './jobs-cases.js';

describeJobsEndToEnd('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-http-jobs-'));
  const path = join(dir, 'jobs.db');
  const store = createSqliteJobStore({ path, pollIntervalMs: 10 });
  const peers: Array<{ close(): Promise<void> | void }> = [];
  return {
    store,
    openPeer: async () => createSqliteJobStore({ path, pollIntervalMs: 10 }),
    unreachable: () => {
      // A store whose database connection is gone.
      const database = new Database(join(dir, 'lost.db'));
      const lost = createSqliteJobStore({ database });
      database.close();
      peers.push(lost);
      return lost;
    },
    cleanup: async () => {
      for (const peer of peers) await peer.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
