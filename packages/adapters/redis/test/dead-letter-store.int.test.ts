import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisDeadLetterStore } from '../src/dead-letter-store.js';

const url = process.env.SWITCHBOARD_REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url);

afterAll(async () => {
  await admin.quit();
});

function randomPrefix(): string {
  return `sbt:dlq:${randomBytes(5).toString('hex')}:`;
}

async function dropKeys(prefix: string): Promise<void> {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
}

describeDeadLetterStoreConformance('redis', ({ clock }) => {
  const prefix = randomPrefix();
  return {
    store: createRedisDeadLetterStore({ url, prefix, clock }),
    second: createRedisDeadLetterStore({ url, prefix, clock }),
    teardown: () => dropKeys(prefix),
  };
});

describe('RedisDeadLetterStore', () => {
  it('keeps a large binary body byte for byte and leaves no keys after remove', async () => {
    const prefix = randomPrefix();
    const store = createRedisDeadLetterStore({ url, prefix });
    const body = randomBytes(256 * 1024);
    const added = await store.add({
      messageId: newMessageId(),
      topic: 't',
      group: 'g',
      headers: {},
      body,
      reason: 'invalid',
      attempts: [],
    });
    const got = await store.get(added.id);
    expect(Buffer.from(got?.body ?? []).equals(body)).toBe(true);
    expect(await store.remove([added.id])).toBe(1);
    expect(await admin.keys(`${prefix}*`)).toEqual([]);
    await store.close();
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createRedisDeadLetterStore({ url: 'redis://127.0.0.1:1', prefix: randomPrefix() });
    const error = await store.list().catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
