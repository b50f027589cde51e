import { randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import type { JobStore } from '@switchboard/core';
import { channels } from '@switchboard/core';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createPostgresJobStore } from '@switchboard/postgres';
import { createRedisJobStore } from '@switchboard/redis';
import { createSqliteJobStore } from '@switchboard/sqlite';
import pg from 'pg';
import { benchDatabasePath, removeDatabase } from '../lib/sqlite-files.js';
import { clockMs } from '../lib/stamp.js';
import { jobsBenchContract } from './jobs-contract.js';

// One Switchboard service with jobs on the store named by argv[2] (sqlite, postgres, redis).
// Its worker runs in the same process. `GET /bench/stats` answers how many jobs succeeded and the
// CPU time the process used so far (CPU per job is the figure that survives a noisy machine).
const kind = process.argv[2] ?? 'sqlite';
const concurrency = Number(process.argv[3] ?? 64);
const suffix = randomBytes(4).toString('hex');
const POSTGRES = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const sqlitePath = benchDatabasePath(`jobs-${suffix}`);
const table = `bench_jobs_${suffix}`;
const prefix = `bench:jobs:${suffix}:`;

function openStore(): JobStore {
  switch (kind) {
    case 'sqlite':
      return createSqliteJobStore({ path: sqlitePath });
    case 'postgres':
      return createPostgresJobStore({ connectionString: POSTGRES, table });
    case 'redis':
      return createRedisJobStore({ url: REDIS, prefix });
    default:
      throw new Error(`unknown store ${kind}`);
  }
}

let succeeded = 0;
subscribe(channels.jobState.name, (message) => {
  if ((message as { status?: string }).status === 'succeeded') succeeded++;
});

const store = openStore();
const jobs = enableJobs(jobsBenchContract, {
  store,
  defaults: { maxQueued: 1_000_000 },
  worker: { concurrency },
});
const service = createHttpService({
  contract: jobsBenchContract,
  handlers: {
    save: (input) => ({ saved: true, name: input.name }),
    sleep: async ({ ms }) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return { finishedAt: clockMs() };
    },
  },
  idempotency: false,
  routes: [
    ...jobs.routes,
    {
      methods: ['GET'],
      path: '/bench/stats',
      handle: (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const cpu = process.cpuUsage();
        res.end(JSON.stringify({ succeeded, cpuMs: (cpu.user + cpu.system) / 1000 }));
      },
    },
  ],
  interceptors: jobs.interceptors,
});
jobs.start(service);
const { port } = await service.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port, store: kind }));

process.on('SIGTERM', () => {
  void (async () => {
    await jobs.close({ timeoutMs: 1000 });
    await service.close({ timeoutMs: 1000 });
    await store.close();
    if (kind === 'sqlite') await removeDatabase(sqlitePath);
    if (kind === 'postgres') {
      const pool = new pg.Pool({ connectionString: POSTGRES, max: 1 });
      await pool.query(`DROP TABLE IF EXISTS ${table}, ${table}_gone`).catch(() => {});
      await pool.end();
    }
    if (kind === 'redis') {
      const { Redis } = await import('ioredis');
      const redis = new Redis(REDIS);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      await redis.quit();
    }
    process.exit(0);
  })();
});
