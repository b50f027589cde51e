import { fileURLToPath } from 'node:url';
import { crashConsumers, randomName } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { createRedisStreamsBroker } from '../src/broker.js';

// The consumers run the built package (dist): build it first with `tsc -b packages/adapters/redis`.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `${randomName('sbcrash')}:`;
const script = fileURLToPath(new URL('./broker-crash-consumer.mjs', import.meta.url));

afterAll(async () => {
  const redis = new Redis(url);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

it('loses none of 10 000 messages while the consumer process is SIGKILLed twice', { timeout: 180_000 }, async () => {
  const broker = createRedisStreamsBroker({ url, prefix });
  const topic = randomName('orders');
  const group = randomName('billing');
  try {
    const run = await crashConsumers({ broker, topic, group, script, args: [url, prefix, topic, group] });
    console.log(
      `redis crash test: sent ${run.sent.size}, handled ${run.handled.size} distinct, lost ${run.lost.length}, duplicates ${run.duplicates}`,
    );
    expect(run.sent.size).toBe(10_000);
    expect(run.lost).toEqual([]);
    expect(run.strays).toEqual([]);
  } finally {
    await broker.close();
  }
});
