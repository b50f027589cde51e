import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { implement } from '@switchboard/core';
import { createClient } from '@switchboard/http';
import { createTestbed, type Testbed } from '@switchboard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceA, serviceB, serviceC } from '../src/contracts.js';
import { serviceAHandlers } from '../src/handlers-a.js';
import { serviceBConsumes, serviceBHandlers } from '../src/handlers-b.js';
import { createServiceC } from '../src/handlers-c.js';
import { type Names, openNames } from '../src/names.js';

/**
 * The demo's three services in one process, on the testbed: the very handlers the demo's processes
 * run, with B's names table on SQLite (its committed changes become `name.saved` through B's
 * outbox), and everything else in memory. The process-level tests (`demo*.int.test.ts`) run the
 * built demo as separate processes.
 */
describe('the demo on the testbed', () => {
  let bed: Testbed;
  let names: Names | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'demo-testbed-'));
  const c = createServiceC();

  beforeAll(async () => {
    bed = await createTestbed({
      services: {
        'service-a': {
          serves: serviceA,
          handlers: (bed, messaging) =>
            serviceAHandlers({
              b: bed.client(serviceB),
              bJobs: bed.jobs(serviceB),
              c: bed.client(serviceC),
              messaging,
              serviceBUrl: bed.url('service-b'),
              serviceCUrl: bed.url('service-c'),
              dispatcher: bed.network.dispatcher,
            }),
        },
        'service-b': {
          serves: serviceB,
          handlers: serviceBHandlers({
            save: (name) => {
              if (names === undefined) throw new Error('names table not open yet');
              return names.save(name);
            },
          }),
          jobs: { operations: { save: false, analyze: { concurrency: 4 } } },
          consumes: serviceBConsumes,
        },
        'service-c': { serves: serviceC, handlers: c.handlers, consumes: c.consumes, serveMessages: false },
      },
    });
    names = await openNames({
      config: { port: 0, host: '127.0.0.1', dataDir, broker: 'memory:', changes: 'sqlite' },
      broker: bed.broker,
      deadLetters: bed.service('service-b').deadLetters,
    });
  });
  afterAll(async () => {
    await bed?.close();
    await names?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.each(['sync-http', 'async-http', 'message', 'event', 'claim-check', 'change-event'] as const)(
    'ServiceA reaches B by %s and reports success',
    async (pattern) => {
      const outcome = await bed.call(serviceA, 'process', { name: 'Ada  Lovelace', pattern });
      expect(outcome.ok).toBe(true);
      if (!outcome.ok) return;
      expect(outcome.value).toMatchObject({ pattern, ok: true });
      expect(outcome.value.coupling).not.toBe('');
    },
  );

  it('B saves the same way by HTTP and by message; analyze runs as a job with progress', async () => {
    const byHttp = await bed.call(serviceB, 'save', { name: 'Grace' });
    const byMessage = await bed.call(serviceB, 'save', { name: 'Grace' }, { via: 'message', from: 'service-a' });
    expect(byHttp).toMatchObject({ ok: true, value: { saved: true } });
    expect(byMessage).toMatchObject({ ok: true, value: { saved: true } });
    if (!byHttp.ok || !byMessage.ok) return;
    expect(byMessage.value.id).toBe(byHttp.value.id);
    expect(byMessage.value.saves).toBe(byHttp.value.saves + 1);
    const job = await bed.call(serviceB, 'analyze', { name: 'Otto', workMs: 20 }, { via: 'job' });
    expect(job).toMatchObject({ ok: true, value: { name: 'Otto', letters: 4, palindrome: true } });
    expect((await bed.job(job.jobId ?? '')).progress).toMatchObject({ percent: 100 });
  });

  it('a name of digits is refused with the declared error by HTTP and by message (dead-lettered as permanent)', async () => {
    for (const via of ['http', 'message'] as const) {
      const outcome = await bed.call(serviceB, 'save', { name: '12345' }, { via });
      expect(outcome).toMatchObject({ ok: false, error: { code: 'NameRejected', data: { reason: 'digits only' } } });
      if (via === 'message') expect(outcome.deadLetter).toMatchObject({ reason: 'permanent', group: 'service-b' });
    }
  });

  it("A's payload-free event is handled by B and C; C counts what it saw", async () => {
    const { receipt } = await bed.emit(serviceA, 'name.processed');
    expect(Object.fromEntries(receipt.groups.map((g) => [g.group, g.state]))).toEqual({
      'service-b': 'processed',
      'service-c': 'processed',
    });
    const fromC = receipt.groups.find((g) => g.group === 'service-c');
    expect(JSON.parse(fromC?.result ?? '{}')).toMatchObject({ reacted: 'service-c' });
  });

  it('a row change of B becomes name.saved, which C sees', async () => {
    const saved = await bed.call(serviceB, 'save', { name: 'Hedy Lamarr' });
    if (!saved.ok) throw new Error(saved.error.code);
    const seen = await bed.call(serviceC, 'seen', { id: saved.value.id, saves: saved.value.saves, waitMs: 5_000 });
    expect(seen).toMatchObject({ ok: true, value: { seen: true, saves: saved.value.saves } });
  });

  it('the contracts are the only coupling: a stand-in B answers A the same way', async () => {
    const standIn = await createTestbed({
      services: {
        'service-b': {
          serves: serviceB,
          handlers: implement(serviceB, {
            save: ({ name }) => ({ saved: true, id: `stand-in:${name}`, saves: 1 }),
            analyze: ({ name }) => ({ name, letters: 0, vowels: 0, palindrome: false }),
          }),
        },
        'service-a': {
          serves: serviceA,
          handlers: (bed, messaging) =>
            serviceAHandlers({
              b: bed.client(serviceB),
              bJobs: bed.jobs(serviceB),
              c: createClient(serviceC, { baseUrl: 'http://nobody.test', dispatcher: bed.network.dispatcher }),
              messaging,
              serviceBUrl: bed.url('service-b'),
              serviceCUrl: bed.url('service-b'),
              dispatcher: bed.network.dispatcher,
            }),
        },
      },
    });
    try {
      const outcome = await standIn.call(serviceA, 'process', { name: 'Ada', pattern: 'message' });
      expect(outcome).toMatchObject({ ok: true, value: { ok: true, details: { receipt: { group: 'service-b', state: 'processed' } } } });
    } finally {
      await standIn.close();
    }
  });
});
