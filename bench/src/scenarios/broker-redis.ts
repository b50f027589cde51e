import { compareEngine } from '../lib/broker-load.js';
import type { Scenario } from '../lib/scenario.js';

/**
 * Redis Streams: XADD (serial, 256 in flight), XREADGROUP + XACK; raw ioredis vs adapter
 * Server: `REDIS_URL` (default `redis://127.0.0.1:6379`); a row says so when it is not reachable.
 */
export const brokerRedis: Scenario = {
  name: 'broker-redis',
  description:
    'Redis Streams: XADD (serial, 256 in flight), XREADGROUP + XACK; raw ioredis vs adapter vs messaging transport and full paths',
  run(ctx) {
    return compareEngine(ctx, {
      scenario: 'broker-redis',
      engine: 'redis',
      target: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      defaultPort: 6379,
      rawLabel: 'raw ioredis',
      nativeStores: true,
    });
  },
};
