import { randomBytes } from 'node:crypto';
import { isSwitchboardError, newMessageId } from '@switchboard/core';
import { describeReceiptStoreConformance } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisReceiptStore } from '../src/receipt-store.js';
import { startPrivateRedis } from './broker-redis-server.js';

const url = process.env.SWITCHBOARD_REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url);

afterAll(async () => {
  await admin.quit();
});

function randomPrefix(): string {
  return `sbt:receipts:${randomBytes(5).toString('hex')}:`;
}

async function dropKeys(prefix: string): Promise<void> {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
}

describeReceiptStoreConformance(
  'redis',
  ({ clock }) => {
    const prefix = randomPrefix();
    return {
      store: createRedisReceiptStore({ url, prefix, clock }),
      second: createRedisReceiptStore({ url, prefix, clock }),
      teardown: () => dropKeys(prefix),
    };
  },
  {
    // The key layout separates group, source and MessageId with NUL.
    unholdable: [
      { label: 'a NUL in the source', update: { source: '/s\u0000x' } },
      { label: 'a NUL in the group', update: { group: 'g\u0000x' } },
    ],
  },
);

describe('RedisReceiptStore', () => {
  it('works on a client the caller owns, leaves it open, and reloads its scripts after SCRIPT FLUSH', async () => {
    const prefix = randomPrefix();
    const client = new Redis(url);
    const store = createRedisReceiptStore({ client, prefix });
    const id = newMessageId();
    expect((await store.claim({ group: 'g', source: '/s', messageId: id, owner: 'w', leaseMs: 1000 })).outcome).toBe('claimed');
    await admin.script('FLUSH');
    expect(await store.record([{ group: 'g', source: '/s', messageId: id, state: 'processed', attempt: 1 }])).toEqual(['updated']);
    await store.close();
    expect(JSON.parse((await client.hget(`${prefix}r:${id}`, 'g\u0000/s')) ?? '{}')).toMatchObject({ state: 'processed' });
    await client.quit();
    await dropKeys(prefix);
  });

  it('purges every index entry with the record, leaving no keys behind', async () => {
    const prefix = randomPrefix();
    const store = createRedisReceiptStore({ url, prefix });
    await store.record(
      Array.from({ length: 20 }, (_, i) => ({
        group: `g${i % 3}`,
        source: `/s${i % 2}`,
        messageId: newMessageId(),
        state: 'processed' as const,
      })),
    );
    expect(await store.purge(Date.now() + 1)).toBe(20);
    expect((await admin.keys(`${prefix}*`)).sort()).toEqual([]);
    await store.close();
  });

  it("takes a record over the server's bulk limit as a permanent refusal (SB_STORE_REFUSED), and keeps working", async () => {
    const server = await startPrivateRedis(['--proto-max-bulk-len', '1mb']);
    const store = createRedisReceiptStore({ url: server.url, prefix: randomPrefix() });
    try {
      const key = { group: 'g', source: '/s', messageId: newMessageId() };
      const error = await store.record([{ ...key, state: 'processed', result: 'r'.repeat(2 * 1024 * 1024) }]).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SB_STORE_REFUSED', retryable: false });
      expect(await store.get(key)).toBeUndefined();
      expect(await store.record([{ ...key, state: 'processed', result: 'small' }])).toEqual(['created']);
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createRedisReceiptStore({ url: 'redis://127.0.0.1:1', prefix: randomPrefix() });
    const error = await store.get({ group: 'g', source: '/s', messageId: newMessageId() }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
});
