import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Handlers, IdempotencyStore, JobStore } from '@switchboard/core';
import { defineContract, OperationError, operation, SwitchboardError } from '@switchboard/core';
import type { HttpRoute, HttpService } from '@switchboard/http';
import { createClient, createHttpService, enableJobs } from '@switchboard/http';
import { createMemoryJobStore } from '@switchboard/memory';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { until } from './jobs-cases.js';

// docs/errors.md promises that no handler message, stack trace or internal URL ever reaches the
// wire. This file walks every error path of the sync server and of the job routes, with every
// failure carrying secrets, and checks each answer.

const SECRET = 'hunter2-SECRET';

const upstream = defineContract({
  name: 'billing',
  operations: { charge: operation({ input: z.object({ cents: z.number() }), output: z.object({ ok: z.boolean() }) }) },
});

const leaky = defineContract({
  name: 'leaky',
  operations: {
    fail: operation({
      input: z.object({
        how: z.enum([
          'throw',
          'throw-string',
          'switchboard',
          'switchboard-extensions',
          'undeclared',
          'bad-data',
          'bad-output',
          'upstream-down',
          'upstream-problem',
          'fine',
        ]),
      }),
      output: z.object({ ok: z.boolean() }),
      errors: { Declared: { status: 409, data: z.object({ n: z.number() }) } },
    }),
    intercepted: operation({ input: z.object({ how: z.enum(['throw', 'switchboard']) }), output: z.object({}) }),
  },
});

/** A job store whose every call fails with an error full of secrets once `broken` is set. */
function breakable(store: JobStore): { store: JobStore; set(broken: boolean): void } {
  let broken = false;
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (broken && name !== 'close') {
          return Promise.reject(
            new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `postgres://admin:${SECRET}@10.1.2.3/jobs refused` }),
          );
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, set: (value) => (broken = value) };
}

/** An idempotency store that throws secrets. */
class BrokenIdempotency implements IdempotencyStore {
  async begin(): Promise<never> {
    throw new Error(`redis://:${SECRET}@10.0.0.9:6379 ECONNREFUSED`);
  }
  async complete(): Promise<void> {}
  async abandon(): Promise<void> {}
}

function expectClean(text: string, where: string): void {
  expect(text, where).not.toContain(SECRET);
  expect(text, where).not.toMatch(/\bat [^\n]*:\d+:\d+/); // stack frames
  expect(text, where).not.toMatch(/https?:\/\/127\.0\.0\.1:\d+/); // internal URLs
  expect(text, where).not.toContain('/ops/charge');
  // The internal addresses the failures name (10.x.x.x); not a timestamp's seconds ("…:19:10.629Z").
  expect(text, where).not.toMatch(/\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b/);
  expect(text, where).not.toContain('ECONNREFUSED');
}

describe('no handler message, stack or internal URL on the wire', () => {
  let upstreamService: HttpService;
  let service: HttpService;
  let brokenService: HttpService;
  let url: string;
  let brokenUrl: string;
  let deadUrl: string;
  const jobStore = breakable(createMemoryJobStore());

  beforeAll(async () => {
    upstreamService = createHttpService({
      contract: upstream,
      handlers: {
        charge: () => {
          throw new SwitchboardError('SB_CONFLICT', { detail: `ledger at http://10.9.9.9:5432 says ${SECRET}` });
        },
      },
    });
    const up = await upstreamService.listen();
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    const down = createClient(upstream, { baseUrl: deadUrl, retry: false, breaker: false });
    const billing = createClient(upstream, { baseUrl: up.url, retry: false, breaker: false });

    const handlers: Handlers<typeof leaky> = {
      fail: async ({ how }) => {
        switch (how) {
          case 'throw':
            throw new Error(`database password is ${SECRET}`);
          case 'throw-string':
            throw SECRET;
          case 'switchboard':
            throw new SwitchboardError('SB_CONFLICT', { detail: `row ${SECRET} changed`, retryAfterMs: 1000 });
          case 'switchboard-extensions':
            throw new SwitchboardError('SB_VALIDATION', {
              detail: 'nested',
              errors: [{ pointer: '/x', message: SECRET }],
              extensions: { internal: SECRET },
            });
          case 'undeclared':
            throw new OperationError('NotDeclared', { detail: SECRET, data: { secret: SECRET } });
          case 'bad-data':
            throw new OperationError('Declared', { data: { n: SECRET } as unknown as { n: number } });
          case 'bad-output':
            return { ok: SECRET } as unknown as { ok: boolean };
          case 'upstream-down':
            await down.call('charge', { cents: 1 });
            return { ok: true };
          case 'upstream-problem':
            await billing.call('charge', { cents: 1 });
            return { ok: true };
          case 'fine':
            return { ok: true };
        }
      },
      intercepted: () => ({}),
    };
    const throwingRoute: HttpRoute = {
      methods: ['GET'],
      path: '/explode',
      handle: () => {
        throw new Error(`route failed at ${deadUrl}/ops/charge with ${SECRET}`);
      },
    };
    const jobs = enableJobs(leaky, { store: jobStore.store, worker: { pollIntervalMs: 10 } });
    service = createHttpService({
      contract: leaky,
      handlers,
      routes: [...jobs.routes, throwingRoute],
      interceptors: [
        ...jobs.interceptors,
        (call) => {
          if (call.operation !== 'intercepted') return undefined;
          if ((call.input as { how: string }).how === 'throw') throw new Error(SECRET);
          throw new SwitchboardError('SB_FORBIDDEN', { detail: SECRET });
        },
      ],
    });
    jobs.start(service);
    url = (await service.listen()).url;
    brokenService = createHttpService({ contract: leaky, handlers, idempotency: { store: new BrokenIdempotency() } });
    brokenUrl = (await brokenService.listen()).url;
    return async () => {
      await jobs.close({ timeoutMs: 50 });
      await down.close();
      await billing.close();
    };
  });

  afterAll(async () => {
    await service.close({ timeoutMs: 50 });
    await brokenService.close({ timeoutMs: 50 });
    await upstreamService.close({ timeoutMs: 50 });
  });

  async function call(base: string, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
    const response = await request(`${base}${path}`, {
      method: (init.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text };
  }

  const hows = [
    'throw',
    'throw-string',
    'switchboard',
    'switchboard-extensions',
    'undeclared',
    'bad-data',
    'bad-output',
    'upstream-down',
    'upstream-problem',
  ] as const;

  for (const how of hows) {
    it(`sync call, handler failure "${how}"`, async () => {
      const answer = await call(url, '/ops/fail', { body: JSON.stringify({ how }) });
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.headers['content-type']).toBe('application/problem+json');
      expectClean(answer.text, how);
    });

    it(`job, handler failure "${how}"`, async () => {
      const accepted = await call(url, '/ops/fail', { body: JSON.stringify({ how }), headers: { prefer: 'respond-async' } });
      expect(accepted.status).toBe(202);
      const location = accepted.headers.location as string;
      const failed = await until(url, location, 'failed');
      expectClean(failed.text, `${how}: status`);
      expectClean((await call(url, `${location}/result`, { method: 'GET' })).text, `${how}: result`);
      const events = await call(url, location, { method: 'GET', headers: { accept: 'text/event-stream' } });
      expectClean(events.text, `${how}: events`);
    });
  }

  it('keeps the status, code and Retry-After of a SwitchboardError a handler throws', async () => {
    const answer = await call(url, '/ops/fail', { body: JSON.stringify({ how: 'switchboard' }) });
    expect(answer.status).toBe(409);
    expect(answer.headers['retry-after']).toBe('1');
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'SB_CONFLICT', retryable: false });
  });

  it('interceptors that throw', async () => {
    for (const how of ['throw', 'switchboard']) {
      const answer = await call(url, '/ops/intercepted', { body: JSON.stringify({ how }) });
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expectClean(answer.text, how);
    }
  });

  it('an extra route that throws', async () => {
    const answer = await call(url, '/explode', { method: 'GET' });
    expect(answer.status).toBe(500);
    expectClean(answer.text, 'route');
  });

  it('an idempotency store that throws', async () => {
    const answer = await call(brokenUrl, '/ops/fail', { body: JSON.stringify({ how: 'fine' }), headers: { 'idempotency-key': 'k1' } });
    expect(answer.status).toBe(503);
    expectClean(answer.text, 'idempotency store');
  });

  it('a job store that throws, on submit, status, result and cancel', async () => {
    const accepted = await call(url, '/ops/fail', { body: JSON.stringify({ how: 'fine' }), headers: { prefer: 'respond-async' } });
    const location = accepted.headers.location as string;
    jobStore.set(true);
    try {
      const answers = [
        await call(url, '/ops/fail', { body: JSON.stringify({ how: 'fine' }), headers: { prefer: 'respond-async' } }),
        await call(url, location, { method: 'GET' }),
        await call(url, `${location}/result`, { method: 'GET' }),
        await call(url, location, { method: 'DELETE' }),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expectClean(answer.text, 'job store');
      }
    } finally {
      jobStore.set(false);
    }
  });

  it('the client-side errors of the framework itself (malformed, unknown, wrong method, too large)', async () => {
    const answers = [
      await call(url, '/ops/fail', { body: '{"how":' }),
      await call(url, '/ops/nope', { body: '{}' }),
      await call(url, '/ops/fail', { method: 'GET' }),
      await call(url, '/jobs/AAAAAAAAAAAAAAAAAAAAAA', { method: 'GET' }),
      await call(url, '/ops/fail', { body: JSON.stringify({ how: 'x'.repeat(2_000_000) }) }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBeGreaterThanOrEqual(400);
      expectClean(answer.text, String(answer.status));
    }
  });
});
