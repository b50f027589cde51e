import { randomBytes } from 'node:crypto';
import { describeIdempotencyStoreConformance } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { createRedisIdempotencyStore } from '../src/idempotency-store.js';

const url = process.env.SWITCHBOARD_REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url);

afterAll(async () => {
  await admin.quit();
});

describeIdempotencyStoreConformance(
  'redis',
  (options) => {
    const prefix = `sbt:idem:${randomBytes(5).toString('hex')}:`;
    return {
      store: createRedisIdempotencyStore({ url, prefix, ...options }),
      second: createRedisIdempotencyStore({ url, prefix, ...options }),
      async teardown() {
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length > 0) await admin.del(...keys);
      },
    };
  },
  { shared: true },
);
