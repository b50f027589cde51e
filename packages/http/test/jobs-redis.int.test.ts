import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { createRedisJobStore } from '@switchboard/redis';
import { describeJobsEndToEnd } from './jobs-cases.js';

const url = 'redis://127.0.0.1:6379';

/** Deletes the test's keys with one EVAL sent as raw RESP (the Redis client is the adapter's own dependency). */
function deleteKeys(pattern: string): Promise<void> {
  const script = "for _, key in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', key) end return 1";
  const parts = ['EVAL', script, '0', pattern];
  const command = `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = connect(6379, '127.0.0.1', () => socket.write(command));
    socket.once('data', (reply) => {
      socket.end();
      if (reply.toString().startsWith('-')) reject(new Error(reply.toString()));
      else resolve();
    });
    socket.once('error', reject);
  });
}

describeJobsEndToEnd('redis', async () => {
  const prefix = `test:http-jobs:${randomBytes(6).toString('hex')}:`;
  const store = createRedisJobStore({ url, prefix });
  const others: Array<{ close(): Promise<void> }> = [];
  return {
    store,
    openPeer: async () => createRedisJobStore({ url, prefix }),
    unreachable: () => {
      const lost = createRedisJobStore({ url: 'redis://127.0.0.1:1', prefix });
      others.push(lost);
      return lost;
    },
    cleanup: async () => {
      for (const other of others) await other.close().catch(() => {});
      await store.close();
      await deleteKeys(`${prefix}*`);
    },
  };
});
