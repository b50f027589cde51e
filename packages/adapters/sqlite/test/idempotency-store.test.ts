import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteIdempotencyStore } from '@switchboard/sqlite';
import { describeIdempotencyStoreConformance } from '@switchboard/testkit';

describeIdempotencyStoreConformance(
  'sqlite',
  (options) => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-idempotency-'));
    const path = join(dir, 'store.db');
    return {
      store: createSqliteIdempotencyStore({ path, ...options }),
      second: createSqliteIdempotencyStore({ path, ...options }),
      async teardown() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { shared: true },
);
