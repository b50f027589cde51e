import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Handlers, JobStore } from '@switchboard/core';
import { defineContract, operation } from '@switchboard/core';
import type { HttpJobs, HttpService, JobStatusDocument } from '@switchboard/http';
import { createHttpService, enableJobs, generateWebhookSecret } from '@switchboard/http';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { http, submit, until } from './jobs-cases.js';

// The hardened edges of the job routes and runner.

const odd = defineContract({
  name: 'odd-jobs',
  operations: {
    odd: operation({ input: z.object({ kind: z.enum(['bigint', 'circular', 'fine']) }), output: z.unknown() }),
    any: operation({ input: z.unknown(), output: z.object({ ok: z.boolean() }) }),
  },
});

interface Started {
  readonly url: string;
  readonly port: number;
  readonly service: HttpService;
  readonly jobs: HttpJobs;
  readonly runs: { odd: number };
  readonly errors: unknown[];
}

let dir: string;
let store: JobStore;
const closers: Array<() => Promise<void>> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sb-jobs-hardening-'));
  store = createSqliteJobStore({ path: join(dir, 'jobs.db'), pollIntervalMs: 10 });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(callbacks?: Parameters<typeof enableJobs>[1]['callbacks']): Promise<Started> {
  const runs = { odd: 0 };
  const errors: unknown[] = [];
  const handlers: Handlers<typeof odd> = {
    odd: ({ kind }) => {
      runs.odd += 1;
      if (kind === 'bigint') return { total: 10n };
      if (kind === 'circular') {
        const loop: Record<string, unknown> = {};
        loop.self = loop;
        return loop;
      }
      return { fine: true };
    },
    any: () => ({ ok: true }),
  };
  const jobs = enableJobs(odd, {
    store,
    ...(callbacks === undefined ? {} : { callbacks }),
    worker: { pollIntervalMs: 20, leaseMs: 1_000, heartbeatMs: 50, retry: { baseMs: 10, maxMs: 20 } },
    onError: (error) => errors.push(error),
  });
  const service = createHttpService({ contract: odd, handlers, routes: jobs.routes, interceptors: jobs.interceptors, drainTimeoutMs: 200 });
  jobs.start(service);
  const { url, port } = await service.listen();
  closers.push(async () => {
    await jobs.close({ timeoutMs: 100 });
    await service.close({ timeoutMs: 100 });
  });
  return { url, port, service, jobs, runs, errors };
}

const doc = (answer: { json: unknown }) => answer.json as JobStatusDocument;

describe('job results JSON cannot hold', () => {
  for (const kind of ['bigint', 'circular'] as const) {
    it(`fails the job with SB_RESULT_NOT_SERIALIZABLE (${kind}), after one run`, async () => {
      const server = await start();
      const accepted = await submit(server.url, 'odd', { kind });
      expect(accepted.status).toBe(202);
      const failed = await until(server.url, accepted.headers.location as string, 'failed');
      expect(doc(failed).error).toMatchObject({ code: 'SB_RESULT_NOT_SERIALIZABLE', status: 500 });
      expect(doc(failed).attempts).toBe(1);
      expect(server.runs.odd).toBe(1);
      const result = await http(`${server.url}${accepted.headers.location}/result`);
      expect(result.status).toBe(500);
      expect((result.json as { code: string }).code).toBe('SB_RESULT_NOT_SERIALIZABLE');
    });
  }

  it('answers a Prefer: wait submit of such a job with the failure, not null', async () => {
    const server = await start();
    const inline = await submit(server.url, 'odd', { kind: 'bigint' }, { prefer: 'respond-async, wait=10' });
    expect(inline.status).toBe(500);
    expect((inline.json as { code: string }).code).toBe('SB_RESULT_NOT_SERIALIZABLE');
  });
});

describe('job submits and monitors', () => {
  it('refuses a submit nested deeper than maxJsonDepth with 400 SB_JSON_TOO_DEEP, and creates no job', async () => {
    const server = await start();
    const answer = await http(`${server.url}/ops/any`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
    });
    expect(answer.status).toBe(400);
    expect((answer.json as { code: string }).code).toBe('SB_JSON_TOO_DEEP');
    const counts = await store.counts();
    expect(counts.queued + counts.running).toBe(0);
  });

  it('answers GET /jobs/<id> sent with a body that never ends, and frees the socket', async () => {
    const server = await start();
    const socket = connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /jobs/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\nxxxx');
    const timer = setInterval(() => socket.writable && socket.write('xxxxxxxxxx'), 50);
    await closed;
    clearInterval(timer);
    expect(text).toMatch(/^HTTP\/1\.1 404 /);
  });
});

describe('completion callbacks', () => {
  let receiver: Server;
  let receiverPort: number;
  let status = 204;

  beforeEach(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(status).end();
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    receiverPort = (receiver.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  async function finalCallback(server: Started, url: string): Promise<JobStatusDocument['callback']> {
    const accepted = await submit(server.url, 'odd', { kind: 'fine' }, { 'switchboard-callback': url });
    expect(accepted.status).toBe(202);
    const location = accepted.headers.location as string;
    for (let i = 0; i < 400; i++) {
      const current = doc(await http(`${server.url}${location}`));
      if (current.callback !== undefined && current.callback.state !== 'pending') return current.callback;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error('the callback never settled');
  }

  const options = (allow: readonly string[]) => ({
    allow,
    secrets: [generateWebhookSecret()],
    attempts: 2,
    backoff: { baseMs: 5, maxMs: 10 },
    timeoutMs: 1_000,
  });

  it('needs an explicit port on host entries of the allow-list', () => {
    expect(() => enableJobs(odd, { store, worker: false, callbacks: options(['127.0.0.1']) })).toThrow(/port/);
    expect(() => enableJobs(odd, { store, worker: false, callbacks: options(['*.example.com']) })).toThrow(/port/);
  });

  it('refuses another port of an allowed host at submit, so the allow-list is no port scanner', async () => {
    const server = await start(options([`127.0.0.1:${receiverPort}`]));
    const refused = await submit(
      server.url,
      'odd',
      { kind: 'fine' },
      { 'switchboard-callback': `http://127.0.0.1:${receiverPort + 1}/hook` },
    );
    expect(refused.status).toBe(400);
    expect((refused.json as { code: string }).code).toBe('SB_CALLBACK_NOT_ALLOWED');
  });

  it('records lastError as a category, never the raw error text', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const server = await start(options([`127.0.0.1:${receiverPort}`, `127.0.0.1:${deadPort}`]));

    const refused = await finalCallback(server, `http://127.0.0.1:${deadPort}/hook`);
    expect(refused).toMatchObject({ state: 'failed', lastError: 'connect-failed' });

    status = 503;
    expect(await finalCallback(server, `http://127.0.0.1:${receiverPort}/hook`)).toMatchObject({ state: 'failed', lastError: 'http-5xx' });
    status = 410;
    expect(await finalCallback(server, `http://127.0.0.1:${receiverPort}/hook`)).toMatchObject({ state: 'failed', lastError: 'http-4xx' });
    status = 302;
    expect(await finalCallback(server, `http://127.0.0.1:${receiverPort}/hook`)).toMatchObject({ state: 'failed', lastError: 'http-3xx' });
    status = 204;
    expect(await finalCallback(server, `http://127.0.0.1:${receiverPort}/hook`)).toMatchObject({ state: 'delivered' });
  });

  it('records timeout for a receiver that does not answer in time', async () => {
    const silent = createServer(() => {});
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as AddressInfo).port;
    try {
      const server = await start({ ...options([`127.0.0.1:${port}`]), timeoutMs: 100 });
      expect(await finalCallback(server, `http://127.0.0.1:${port}/hook`)).toMatchObject({ state: 'failed', lastError: 'timeout' });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('checks the allow-list again when delivering: a worker whose list lacks the target records refused-by-policy', async () => {
    const target = `http://127.0.0.1:${receiverPort}/hook`;
    const worker = await start(options(['http://127.0.0.1:1']));
    // Another instance, sharing the store, accepts the job under a list that has the target.
    const accepting = enableJobs(odd, { store, worker: false, callbacks: options([`127.0.0.1:${receiverPort}`]) });
    const front = createHttpService({
      contract: odd,
      handlers: { odd: () => ({}), any: () => ({ ok: true }) },
      routes: accepting.routes,
      interceptors: accepting.interceptors,
    });
    accepting.start(front);
    const { url } = await front.listen();
    closers.push(async () => {
      await accepting.close();
      await front.close({ timeoutMs: 100 });
    });
    const accepted = await submit(url, 'odd', { kind: 'fine' }, { 'switchboard-callback': target });
    expect(accepted.status).toBe(202);
    const location = accepted.headers.location as string;
    let callback: JobStatusDocument['callback'];
    for (let i = 0; i < 400 && (callback === undefined || callback.state === 'pending'); i++) {
      callback = doc(await http(`${worker.url}${location}`)).callback;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(callback).toMatchObject({ state: 'failed', lastError: 'refused-by-policy' });
  });
});
