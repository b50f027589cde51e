import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineContract, operation } from '@switchboard/core';
import { createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

// The child runs the built packages: `npm test` builds before the integration tier.
const worker = fileURLToPath(new URL('./fixtures/job-worker.mjs', import.meta.url));
const LEASE_MS = 400;

const contract = defineContract({
  name: 'crunching',
  operations: { crunch: operation({ input: z.object({ n: z.number() }), output: z.object({ doubled: z.number() }) }) },
});

describe('async jobs: a worker process SIGKILLed mid-job', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('loses nothing: after the lease another worker takes the job over and completes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-http-crash-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'jobs.db');

    // This process only accepts jobs at first; the child runs them.
    const store = createSqliteJobStore({ path, pollIntervalMs: 20 });
    cleanups.push(() => store.close());
    const accepting = enableJobs(contract, { store, worker: false });
    const front = createHttpService({
      contract,
      handlers: { crunch: ({ n }) => ({ doubled: n * 2 }) },
      routes: accepting.routes,
      interceptors: accepting.interceptors,
    });
    const { url } = await front.listen();
    cleanups.push(() => front.close({ timeoutMs: 100 }));
    const client = createJobsClient(contract, { baseUrl: url });
    cleanups.push(() => client.close());
    const job = await client.submit('crunch', { n: 21 });

    const child = spawn(process.execPath, [worker, path, String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    child.stdout.setEncoding('utf8');
    const started = await new Promise<{ started: string; via: string }>((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk: string) => {
        output += chunk;
        if (output.includes('\n')) resolve(JSON.parse(output.slice(0, output.indexOf('\n'))));
      });
      child.once('exit', (code) => reject(new Error(`worker exited with ${code} before starting the job`)));
    });
    expect(started).toEqual({ started: job.jobId, via: 'job' });
    expect(await client.status(job)).toMatchObject({ status: 'running', attempts: 1 });

    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');

    // A worker in this process takes the job over once the dead one's lease expired.
    const survivor = enableJobs(contract, { store, worker: { leaseMs: 5_000, pollIntervalMs: 20 } });
    const back = createHttpService({
      contract,
      handlers: { crunch: ({ n }) => ({ doubled: n * 2 }) },
      routes: survivor.routes,
      interceptors: survivor.interceptors,
    });
    survivor.start(back);
    cleanups.push(() => survivor.close({ timeoutMs: 100 }));

    expect(await client.wait(job, { timeoutMs: 20_000 })).toEqual({ doubled: 42 });
    expect(await client.status(job)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });
});
