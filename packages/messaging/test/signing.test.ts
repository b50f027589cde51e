import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBroker } from '@switchboard/memory';
import { createSqliteBroker } from '@switchboard/sqlite';
import { describeSignedMessaging } from './signing-suite.js';

// The engines without a server; the others are in signing-engines.int.test.ts.
describeSignedMessaging('memory', async () => {
  const broker = createMemoryBroker();
  return { broker, cleanup: () => broker.close() };
});

describeSignedMessaging('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-signing-'));
  const broker = createSqliteBroker({ path: join(dir, 'broker.db'), pollIntervalMs: 5, drainTimeoutMs: 200 });
  return {
    broker,
    async cleanup() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
