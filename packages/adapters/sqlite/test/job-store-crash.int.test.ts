import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobLease } from '@switchboard/core';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { afterEach, describe, expect, it } from 'vitest';

// The child runs the built package: `npm test` builds before the integration tier.
const claimer = fileURLToPath(new URL('./fixtures/job-claimer.mjs', import.meta.url));
const LEASE_MS = 300;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function claimInChild(path: string): Promise<{ leases: JobLease[]; kill: () => Promise<void> }> {
  const child = spawn(process.execPath, [claimer, path, String(LEASE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.setEncoding('utf8');
  const line = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('\n')) resolve(output.trim());
    });
    child.once('exit', (code) => reject(new Error(`claimer exited with ${code} before claiming`)));
  });
  const leases = JSON.parse(await line) as JobLease[];
  return {
    leases,
    kill: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      const [, signal] = await exited;
      expect(signal).toBe('SIGKILL');
    },
  };
}

describe('sqlite job store: a worker killed mid-job', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('loses nothing: after the lease another worker takes the job over and completes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-jobs-crash-'));
    dirs.push(dir);
    const path = join(dir, 'jobs.db');
    const store = createSqliteJobStore({ path, pollIntervalMs: 20 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await store.create({ operation: 'resize', input: { i } });
      if (created.outcome === 'created') ids.push(created.job.id);
    }

    const child = await claimInChild(path);
    expect(child.leases).toHaveLength(1);
    const [lost] = child.leases;
    expect(lost).toMatchObject({ jobId: ids[0], attempt: 1 });
    const watching = store.waitForChange(ids[0]!, 2, 10_000);
    await child.kill();

    // Before the lease expires, nobody else may take the job.
    const early = await store.claim({ workerId: 'survivor', leaseMs: 10_000, limit: 10 });
    expect(early.map((c) => c.job.id)).toEqual(ids.slice(1));
    for (const claim of early) expect(await store.complete(claim.lease, { by: 'survivor' })).toBe('succeeded');

    let takeover = await store.claim({ workerId: 'survivor', leaseMs: 10_000 });
    for (let tries = 0; takeover.length === 0 && tries < 100; tries++) {
      await delay(LEASE_MS / 3);
      takeover = await store.claim({ workerId: 'survivor', leaseMs: 10_000 });
    }
    expect(takeover).toHaveLength(1);
    expect(takeover[0]!.job).toMatchObject({ id: ids[0], attempts: 2, input: { i: 0 } });
    expect(await store.heartbeat(lost!, 10_000)).toBe('lost');
    expect(await store.complete(takeover[0]!.lease, { by: 'survivor' })).toBe('succeeded');

    const changed = await watching;
    expect(changed.state).toBe('found');
    for (const id of ids) {
      expect(await store.get(id)).toMatchObject({ state: 'found', job: { status: 'succeeded', result: { by: 'survivor' } } });
    }
    expect(await store.counts()).toEqual({ queued: 0, running: 0 });
    await store.close();
  });
});
