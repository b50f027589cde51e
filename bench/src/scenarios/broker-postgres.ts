import { compareEngine } from '../lib/broker-load.js';
import type { Scenario } from '../lib/scenario.js';

/**
 * PostgreSQL: INSERT (serial, 256 in flight), SELECT FOR UPDATE SKIP LOCKED + DELETE; raw pg vs adapter
 * Server: `POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); a row says so when it is not reachable.
 */
export const brokerPostgres: Scenario = {
  name: 'broker-postgres',
  description:
    'PostgreSQL: INSERT (serial, 256 in flight), SELECT FOR UPDATE SKIP LOCKED + DELETE; raw pg vs adapter vs messaging transport and full paths',
  run(ctx) {
    return compareEngine(ctx, {
      scenario: 'broker-postgres',
      engine: 'postgres',
      target: process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      defaultPort: 5432,
      rawLabel: 'raw pg',
      nativeStores: true,
    });
  },
};
