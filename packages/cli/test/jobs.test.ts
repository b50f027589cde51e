/**
 * `switchboard jobs <url>`, run as users run it (the built bin in a child process) against a real
 * service whose dashboard saw a job. `npm test` builds first; run `npm run build` before this file alone.
 */
import { defineContract, implement, operation } from '@switchboard/core';
import { createDashboard, createFlowRecorder } from '@switchboard/dashboard';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runBin } from './bin.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function run(args: readonly string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = runBin(args);
  closers.push(child.kill);
  return { code: await child.exited, out: child.out(), err: child.err() };
}

describe('switchboard jobs <url>', () => {
  it("lists the jobs in progress a service's dashboard saw, finished ones with --all, and refuses a bad call", async () => {
    const contract = defineContract({
      name: 'worker',
      operations: { slow: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }) },
    });
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const store = createSqliteJobStore({ path: ':memory:' });
    const jobs = enableJobs(contract, { store, worker: { pollIntervalMs: 10, heartbeatMs: 50 } });
    const recorder = createFlowRecorder({ service: 'worker' });
    const dashboard = createDashboard({ recorder, jobs });
    const service = createHttpService({
      contract,
      handlers: implement(contract, {
        slow: async () => {
          await gate;
          return { done: true };
        },
      }),
      routes: [...jobs.routes, dashboard.route],
      interceptors: jobs.interceptors,
    });
    jobs.start(service);
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    closers.push(
      () => recorder.close(),
      () => dashboard.close(),
      () => service.close(),
      () => jobs.close({ timeoutMs: 1000 }),
    );
    const submit = await fetch(`${url}/ops/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: '{}',
    });
    expect(submit.status).toBe(202);
    const { id } = (await submit.json()) as { id: string };
    for (let lookup = await store.get(id); lookup.state !== 'found' || lookup.job.status !== 'running'; lookup = await store.get(id)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await expect
      .poll(async () => ((await (await fetch(`${url}/_switchboard/api/jobs?active=1`)).json()) as { jobs: unknown[] }).jobs.length)
      .toBe(1);

    const running = await run(['jobs', url, '--json']);
    expect(running.code).toBe(0);
    expect(JSON.parse(running.out)).toMatchObject({ jobs: [{ jobId: id, service: 'worker', operation: 'slow', status: 'running' }] });
    const pretty = await run(['jobs', `${url}/_switchboard`]);
    expect(pretty.out.trim().split('\t').slice(0, 4)).toEqual(['worker', id, 'slow', 'running']);

    release();
    for (let lookup = await store.get(id); lookup.state !== 'found' || lookup.job.status !== 'succeeded'; lookup = await store.get(id)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await expect
      .poll(async () => ((await (await fetch(`${url}/_switchboard/api/jobs?active=1`)).json()) as { jobs: unknown[] }).jobs.length)
      .toBe(0);
    expect(JSON.parse((await run(['jobs', url, '--json'])).out)).toEqual({ jobs: [] });
    const all = JSON.parse((await run(['jobs', url, '--all', '--json'])).out) as { jobs: { jobId: string; status: string }[] };
    expect(all.jobs.map((job) => [job.jobId, job.status])).toEqual([[id, 'succeeded']]);
    expect(JSON.parse((await run(['jobs', url, '--all', '--operation', 'other', '--json'])).out)).toEqual({ jobs: [] });

    const both = await run(['jobs', url, '--store', 'sqlite:x.db']);
    expect(both.code).toBe(2);
    expect(JSON.parse(both.err.trim())).toMatchObject({ code: 'SB_BAD_REQUEST' });
    const neither = await run(['jobs']);
    expect(neither.code).toBe(2);
    const unreachable = await run(['jobs', 'http://127.0.0.1:9/']);
    expect(unreachable.code).toBe(1);
    expect(JSON.parse(unreachable.err.trim()).detail).toContain('cannot reach');
  });
});
