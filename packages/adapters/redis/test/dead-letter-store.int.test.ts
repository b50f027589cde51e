import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisDeadLetterStore } from '../src/dead-letter-store.js';
import { startPrivateRedis } from './broker-redis-server.js';

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

describeDeadLetterStoreConformance(
  'redis',
  ({ clock }) => {
    const prefix = randomPrefix();
    return {
      store: createRedisDeadLetterStore({ url, prefix, clock }),
      second: createRedisDeadLetterStore({ url, prefix, clock }),
      teardown: () => dropKeys(prefix),
    };
  },
  {
    unholdable: [
      { label: 'a NUL in the source', entry: { source: '/s\u0000x' } },
      { label: 'a NUL in the group', entry: { group: 'g\u0000x' } },
    ],
  },
);

describe('RedisDeadLetterStore', () => {
  it('keeps a large binary body byte for byte and leaves no keys after remove', async () => {
    const prefix = randomPrefix();
    const store = createRedisDeadLetterStore({ url, prefix });
    const body = randomBytes(256 * 1024);
    const added = await store.add({
      messageId: newMessageId(),
      source: '/s',
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

  it("takes a body over the server's bulk limit as a permanent refusal (SB_STORE_REFUSED), and keeps working", async () => {
    const server = await startPrivateRedis(['--proto-max-bulk-len', '1mb']);
    const store = createRedisDeadLetterStore({ url: server.url, prefix: randomPrefix() });
    try {
      const entry = (body: Uint8Array) => ({
        messageId: newMessageId(),
        source: '/s',
        topic: 't',
        group: 'g',
        headers: {},
        body,
        reason: 'invalid',
        attempts: [],
      });
      const error = await store.add(entry(new Uint8Array(2 * 1024 * 1024))).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SB_STORE_REFUSED', retryable: false });
      expect((await store.list()).items).toEqual([]);
      expect((await store.add(entry(Uint8Array.from([1, 2, 3])))).size).toBe(3);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createRedisDeadLetterStore({ url: 'redis://127.0.0.1:1', prefix: randomPrefix() });
    const error = await store.list().catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
