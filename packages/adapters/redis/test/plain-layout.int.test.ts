import { describePlainLayout, randomName } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { createRedisStreamsBroker } from '../src/broker.js';

// A producer that is not Switchboard writes stream entries by hand with XADD, in the plain layout
// of docs/brokers.md: a field per header, `body`, and the optional `id` and `key`.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${randomName('sbplain')}:`;
const redis = new Redis(url);

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

describePlainLayout(
  'redis-streams (XADD)',
  () => createRedisStreamsBroker({ url, prefix, pollIntervalMs: 50 }),
  () => ({
    async write(topic, message) {
      const fields: string[] = [];
      if (message.id !== undefined) fields.push('id', message.id);
      for (const [name, value] of Object.entries(message.headers ?? {})) fields.push(name, value);
      if (message.key !== undefined) fields.push('key', message.key);
      if (message.body !== undefined) fields.push('body', message.body);
      await redis.xadd(`${prefix}{${topic}}`, '*', ...fields);
    },
  }),
);
