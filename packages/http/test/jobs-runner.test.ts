import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSwitchboardError } from '@switchboard/core';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { submit, until } from './jobs-cases.js';
import { startJobsServer } from './jobs-fixture.js';

describe('job worker', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('shuts down gracefully: a job still running is aborted and queued again for another worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-http-shutdown-'));
    dirs.push(dir);
    const store = createSqliteJobStore({ path: join(dir, 'jobs.db'), pollIntervalMs: 10 });
    const first = await startJobsServer(store);
    const accepted = await submit(first.url, 'gate', { tag: 'long' });
    await first.state.started('long');
    await first.jobs.close({ timeoutMs: 20 });
    const signal = first.state.signals.get('long');
    expect(signal?.aborted).toBe(true);
    expect(isSwitchboardError(signal?.reason, 'SB_OVERLOADED')).toBe(true);
    const lookup = await store.get((accepted.json as { id: string }).id);
    expect(lookup.state === 'found' && lookup.job).toMatchObject({ status: 'queued', attempts: 0 });
    await first.service.close({ timeoutMs: 20 });

    const second = await startJobsServer(store);
    await second.state.started('long');
    second.state.open('long');
    const done = await until(second.url, accepted.headers.location as string, 'succeeded');
    expect(done.status).toBe(303);
    await second.close();
    await store.close();
  });

  it('hands a job submitted here to a free slot of the local worker without a claim, and runs it once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-http-handoff-'));
    dirs.push(dir);
    const store = createSqliteJobStore({ path: join(dir, 'jobs.db'), pollIntervalMs: 10 });
    const claimed: string[] = [];
    const claim = store.claim.bind(store);
    store.claim = async (options) => {
      const claims = await claim(options);
      claimed.push(...claims.map((c) => c.job.id));
      return claims;
    };
    const server = await startJobsServer(store);
    // The worker's first claim found the queue empty; from then on its free slots take new jobs.
    await until(server.url, (await submit(server.url, 'analyze', { text: 'warm up' })).headers.location as string, 'succeeded');
    const accepted = await submit(server.url, 'analyze', { text: 'handed off' });
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ status: 'queued', attempts: 0 });
    const done = await until(server.url, accepted.headers.location as string, 'succeeded');
    expect(done.status).toBe(303);
    const id = (accepted.json as { id: string }).id;
    const lookup = await store.get(id);
    expect(lookup.state === 'found' && lookup.job).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(claimed).not.toContain(id);
    await server.close();
    await store.close();
  });

  it('runs at most `concurrency` jobs of an operation at once and the rest in turn', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-http-concurrency-'));
    dirs.push(dir);
    const store = createSqliteJobStore({ path: join(dir, 'jobs.db'), pollIntervalMs: 10 });
    const server = await startJobsServer(store);
    const tags = ['a', 'b', 'c'];
    const locations = [];
    for (const tag of tags) locations.push((await submit(server.url, 'gate', { tag })).headers.location as string);
    for (const tag of tags) {
      await server.state.started(tag);
      expect((await store.counts('gate')).running).toBe(1);
      server.state.open(tag);
    }
    for (const location of locations) expect((await until(server.url, location, 'succeeded')).status).toBe(303);
    await server.close();
    await store.close();
  });
});
