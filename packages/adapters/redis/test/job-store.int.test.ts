import { randomBytes } from 'node:crypto';
import { isSwitchboardError } from '@switchboard/core';
import { createRedisJobStore } from '@switchboard/redis';
import { describeJobStoreConformance } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

const url = process.env.SWITCHBOARD_REDIS_URL ?? 'redis://127.0.0.1:6379';
const admin = new Redis(url);

afterAll(async () => {
  await admin.quit();
});

function randomPrefix(): string {
  return `sbt:jobs:${randomBytes(5).toString('hex')}:`;
}

async function dropKeys(prefix: string): Promise<void> {
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
}

describeJobStoreConformance('redis', async (context) => {
  const prefix = randomPrefix();
  const options = { ...context, url, prefix };
  return {
    store: createRedisJobStore(options),
    openPeer: async () => createRedisJobStore(options),
    cleanup: () => dropKeys(prefix),
  };
});

describe('redis job store', () => {
  it('works on a client the caller owns, and leaves it open', async () => {
    const prefix = randomPrefix();
    const client = new Redis(url);
    const store = createRedisJobStore({ client, prefix });
    const created = await store.create({ operation: 'resize', input: { n: 1 } });
    expect(created.outcome).toBe('created');
    await store.close();
    expect(await client.exists(`${prefix}job:${created.outcome === 'created' ? created.job.id : ''}`)).toBe(1);
    await client.quit();
    await dropKeys(prefix);
  });

  it('reloads its scripts after SCRIPT FLUSH', async () => {
    const prefix = randomPrefix();
    const store = createRedisJobStore({ url, prefix });
    await store.create({ operation: 'resize', input: {} });
    await admin.script('FLUSH');
    expect((await store.create({ operation: 'resize', input: {} })).outcome).toBe('created');
    expect(await store.counts('resize')).toEqual({ queued: 2, running: 0 });
    await store.close();
    await dropKeys(prefix);
  });

  it('surfaces an unreachable server as SB_STORE_UNAVAILABLE', async () => {
    const store = createRedisJobStore({ url: 'redis://127.0.0.1:1', prefix: randomPrefix() });
    const error = await store.create({ operation: 'resize', input: {} }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_STORE_UNAVAILABLE')).toBe(true);
    await store.close();
  });
  it('answers each completion of one batch on its own, as if they came one after another', async () => {
    const prefix = randomPrefix();
    const store = createRedisJobStore({ url, prefix });
    await store.create({ operation: 'resize', input: { n: 1 } });
    await store.create({ operation: 'resize', input: { n: 2 } });
    const [a, b] = await store.claim({ workerId: 'w', leaseMs: 60_000, limit: 10 });
    const outcomes = await Promise.all([
      store.complete(a!.lease, { ok: 1 }),
      store.complete(b!.lease, { ok: 2 }),
      store.complete(a!.lease, { ok: 'twice' }),
      store.complete({ ...b!.lease, attempt: 7 }, { ok: 3 }),
    ]);
    expect(outcomes).toEqual(['succeeded', 'succeeded', 'lost', 'lost']);
    const lookup = await store.get(a!.lease.jobId);
    expect(lookup).toMatchObject({ state: 'found', job: { status: 'succeeded', result: { ok: 1 }, version: 3 } });
    expect(await store.counts()).toEqual({ queued: 0, running: 0 });
    await store.close();
    await dropKeys(prefix);
  });
});
