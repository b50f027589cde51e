import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobStore } from '@switchboard/core';
import { isSwitchboardError, OperationError, parseTraceparent, SwitchboardError } from '@switchboard/core';
import type { JobRequestInfo, JobStatusDocument } from '@switchboard/http';
import { createJobsClient, verifyWebhook } from '@switchboard/http';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobsServer } from './jobs-fixture.js';
import { analysis, startJobsServer } from './jobs-fixture.js';

export interface StoreHarness {
  readonly store: JobStore;
  /** Another connection to the same jobs (another process would open one). */
  openPeer(): Promise<JobStore>;
  /** A store of the same kind whose backend cannot be reached. */
  unreachable(): JobStore;
  cleanup(): Promise<void>;
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: unknown;
  readonly text: string;
}

export async function http(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const response = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
  });
  const text = await response.body.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, json, text };
}

export function submit(base: string, operation: string, input: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return http(`${base}/ops/${operation}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'respond-async', ...headers },
    body: JSON.stringify(input),
  });
}

const doc = (answer: Answer) => answer.json as JobStatusDocument;
const problem = (answer: Answer) => answer.json as { code: string; status: number; detail?: string; data?: unknown };

/** Polls the monitor (long-polling) until the job is in `status`. */
export async function until(base: string, location: string, status: string, headers: Record<string, string> = {}): Promise<Answer> {
  let etag: string | undefined;
  for (let i = 0; i < 200; i++) {
    // Long-poll from the version seen last, so the loop wakes on each change.
    const answer = await http(`${base}${location}${etag === undefined ? '' : '?wait=2'}`, {
      headers: { ...headers, ...(etag === undefined ? {} : { 'if-none-match': etag }) },
    });
    if (doc(answer)?.status === status) return answer;
    if (answer.status === 303 && status === 'succeeded') return answer;
    if (answer.status === 304) continue;
    etag = answer.headers.etag as string | undefined;
    if (etag === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`job at ${location} never became ${status}`);
}

async function countJobs(store: JobStore): Promise<number> {
  const counts = await store.counts();
  return counts.queued + counts.running;
}

/** The end-to-end cases of async request-reply, run against one job store. */
export function describeJobsEndToEnd(name: string, open: () => Promise<StoreHarness>): void {
  describe(`async request-reply over HTTP (${name} job store)`, () => {
    let harness: StoreHarness;
    let server: JobsServer;
    const extra: Array<{ close(): Promise<void> }> = [];

    beforeEach(async () => {
      harness = await open();
      server = await startJobsServer(harness.store);
    });

    afterEach(async () => {
      for (const item of extra.splice(0).reverse()) await item.close();
      await server.close();
      await harness.cleanup();
    });

    it('answers 202 with Location, Retry-After and a status document; the monitor 303s to the typed result', async () => {
      const accepted = await submit(server.url, 'analyze', { text: 'one two three' });
      expect(accepted.status).toBe(202);
      const location = accepted.headers.location as string;
      expect(location).toMatch(/^\/jobs\/[A-Za-z0-9_-]{22}$/);
      expect(accepted.headers['retry-after']).toBe('1');
      expect(accepted.headers['preference-applied']).toBe('respond-async');
      expect(doc(accepted)).toMatchObject({ id: location.slice('/jobs/'.length), operation: 'analyze', attempts: 0 });
      expect(['queued', 'running', 'succeeded']).toContain(doc(accepted).status);
      expect(Date.parse(doc(accepted).createdAt)).not.toBeNaN();

      const done = await until(server.url, location, 'succeeded');
      expect(done.status).toBe(303);
      expect(done.headers.location).toBe(`${location}/result`);
      expect(doc(done)).toMatchObject({ status: 'succeeded', resultUrl: `${location}/result`, attempts: 1 });
      const result = await http(`${server.url}${location}/result`);
      expect(result.status).toBe(200);
      expect(result.json).toEqual({ words: 3, text: 'one two three' });
      expect(server.state.seen.find((seen) => seen.operation === 'analyze')).toMatchObject({ via: 'job', jobId: doc(accepted).id });
    });

    it('answers inline with Prefer: wait when the job finishes in time, else 202 (Preference-Applied says which)', async () => {
      const inline = await submit(server.url, 'analyze', { text: 'quick job' }, { prefer: 'respond-async, wait=10' });
      expect(inline.status).toBe(200);
      expect(inline.headers['preference-applied']).toBe('wait=10');
      expect(inline.json).toEqual({ words: 2, text: 'quick job' });

      const declared = await submit(server.url, 'analyze', { text: 'x', fail: 'declared' }, { prefer: 'respond-async, wait=10' });
      expect(declared.status).toBe(422);
      expect(problem(declared)).toMatchObject({ code: 'Unreadable', data: { reason: 'gibberish' } });

      const slow = await submit(server.url, 'gate', { tag: 'slow' }, { prefer: 'respond-async, wait=1' });
      expect(slow.status).toBe(202);
      expect(slow.headers['preference-applied']).toBe('respond-async');
      expect(doc(slow).status).toBe('running');
      server.state.open('slow');
      await until(server.url, slow.headers.location as string, 'succeeded');
    });

    it('runs operations declared async as jobs without Prefer, and sync-only ones inline', async () => {
      const accepted = await submit(server.url, 'report', { n: 4 }, { prefer: '' });
      expect(accepted.status).toBe(202);
      expect(accepted.headers['preference-applied']).toBeUndefined();
      await until(server.url, accepted.headers.location as string, 'succeeded');
      const inline = await submit(server.url, 'ping', {});
      expect(inline.status).toBe(200);
      expect(inline.json).toEqual({ pong: true });
    });

    it('makes unchanged polls cheap with ETag / If-None-Match (304) and long-polls until a change', async () => {
      const accepted = await submit(server.url, 'gate', { tag: 'etag' });
      const location = accepted.headers.location as string;
      await server.state.started('etag');
      const running = await until(server.url, location, 'running');
      expect(running.status).toBe(200);
      expect(running.headers['retry-after']).toBe('1');
      const etag = running.headers.etag as string;
      expect(etag).toMatch(/^"\d+"$/);
      const unchanged = await http(`${server.url}${location}`, { headers: { 'if-none-match': etag } });
      expect(unchanged.status).toBe(304);
      expect(unchanged.text).toBe('');
      expect(unchanged.headers.etag).toBe(etag);

      // The long-poll is held until the job changes; the gate opens while it waits.
      const held = http(`${server.url}${location}?wait=30`, { headers: { 'if-none-match': etag } });
      setTimeout(() => server.state.open('etag'), 50);
      const woken = await held;
      expect(woken.status).toBe(303);
      expect(woken.headers['preference-applied']).toBe('wait=30');
      expect(doc(woken).status).toBe('succeeded');
    });

    it('reports a failed job with its problem, and never leaks an undeclared error', async () => {
      const thrown = await submit(server.url, 'analyze', { text: 'x', fail: 'throw' });
      const failed = await until(server.url, thrown.headers.location as string, 'failed');
      expect(failed.status).toBe(200);
      expect(failed.headers['retry-after']).toBeUndefined();
      expect(doc(failed).error).toMatchObject({ code: 'SB_HANDLER_FAILED', status: 500 });
      expect(failed.text).not.toContain('secret');
      const result = await http(`${server.url}${thrown.headers.location}/result`);
      expect(result.status).toBe(500);
      expect(problem(result).code).toBe('SB_HANDLER_FAILED');

      const declared = await submit(server.url, 'analyze', { text: 'x', fail: 'declared' });
      const declaredDoc = doc(await until(server.url, declared.headers.location as string, 'failed'));
      expect(declaredDoc.error).toMatchObject({ code: 'Unreadable', status: 422, data: { reason: 'gibberish' } });
      expect(declaredDoc.attempts).toBe(1);
    });

    it('retries a retryable failure and then succeeds', async () => {
      const accepted = await submit(server.url, 'analyze', { text: 'try again', fail: 'retryable' });
      const done = await until(server.url, accepted.headers.location as string, 'succeeded');
      expect(doc(done).attempts).toBe(2);
    });

    it('cancels a running job (its handler sees the abort) and a queued one; a finished job answers 409', async () => {
      const running = await submit(server.url, 'gate', { tag: 'first' });
      await server.state.started('first');
      // gate runs one at a time, so this one stays queued.
      const queued = await submit(server.url, 'gate', { tag: 'second' });
      expect(doc(queued).status).toBe('queued');

      const canceledQueued = await http(`${server.url}${queued.headers.location}`, { method: 'DELETE' });
      expect(canceledQueued.status).toBe(200);
      expect(doc(canceledQueued)).toMatchObject({ status: 'canceled', error: { code: 'SB_JOB_CANCELED' } });

      const cancelRunning = await http(`${server.url}${running.headers.location}`, { method: 'DELETE' });
      expect(cancelRunning.status).toBe(202);
      const canceled = await until(server.url, running.headers.location as string, 'canceled');
      expect(doc(canceled).error?.code).toBe('SB_JOB_CANCELED');
      const signal = server.state.signals.get('first');
      expect(signal?.aborted).toBe(true);
      expect(isSwitchboardError(signal?.reason, 'SB_JOB_CANCELED')).toBe(true);
      expect(server.state.signals.has('second')).toBe(false);

      const finished = await http(`${server.url}${running.headers.location}`, { method: 'DELETE' });
      expect(finished.status).toBe(409);
      expect(problem(finished).code).toBe('SB_JOB_FINISHED');
      const result = await http(`${server.url}${running.headers.location}/result`);
      expect(problem(result).code).toBe('SB_JOB_CANCELED');
    });

    it('answers 410 Gone after the retention, and 404 for unknown or malformed ids', async () => {
      const accepted = await submit(server.url, 'brief', {});
      let gone: Answer | undefined;
      for (let i = 0; i < 200 && gone?.status !== 410; i++) {
        gone = await http(`${server.url}${accepted.headers.location}`);
        if (gone.status !== 410) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(gone?.status).toBe(410);
      expect(problem(gone as Answer).code).toBe('SB_JOB_GONE');

      for (const path of [
        '/jobs/AAAAAAAAAAAAAAAAAAAAAA',
        '/jobs/x',
        '/jobs/..%2F..%2Fetc',
        '/jobs/AAAAAAAAAAAAAAAAAAAAAA/other',
        '/jobs/',
      ]) {
        const missing = await http(`${server.url}${path}`);
        expect(missing.status, path).toBe(404);
        expect(problem(missing).code, path).toBe('SB_NOT_FOUND');
      }
      expect((await http(`${server.url}/jobs/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'DELETE' })).status).toBe(404);
      expect((await http(`${server.url}/jobs/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'PUT' })).status).toBe(405);
    });

    it('answers 400 / 413 for invalid or oversized submits, and creates no job', async () => {
      const invalid = await submit(server.url, 'analyze', { text: 42 });
      expect(invalid.status).toBe(400);
      expect(problem(invalid).code).toBe('SB_VALIDATION');
      const malformed = await http(`${server.url}/ops/analyze`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'respond-async' },
        body: '{"text":',
      });
      expect(malformed.status).toBe(400);
      const oversized = await submit(server.url, 'analyze', { text: 'x'.repeat(5_000) });
      expect(oversized.status).toBe(413);
      expect(await countJobs(harness.store)).toBe(0);
    });

    it('times out a handler that never ends and fails the job', async () => {
      const accepted = await submit(server.url, 'hang', {});
      const failed = await until(server.url, accepted.headers.location as string, 'failed');
      expect(doc(failed).error).toMatchObject({ code: 'SB_DEADLINE_EXCEEDED' });
      expect(doc(failed).error?.detail).toContain('150 ms');
    });

    it('answers 503 SB_STORE_UNAVAILABLE with Retry-After when the store is down, and creates no job', async () => {
      const broken = await startJobsServer(harness.unreachable(), { worker: false });
      extra.push(broken);
      const refused = await submit(broken.url, 'analyze', { text: 'nope' }, { 'idempotency-key': 'down-1' });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(problem(refused).code).toBe('SB_STORE_UNAVAILABLE');
      const status = await http(`${broken.url}/jobs/AAAAAAAAAAAAAAAAAAAAAA`);
      expect(status.status).toBe(503);
      expect(await countJobs(harness.store)).toBe(0);
    });

    it('keeps a job queued across a restart: a queued job still runs', async () => {
      await server.close(); // no other worker on these jobs
      const accepting = await startJobsServer(harness.store, { worker: false });
      const accepted = await submit(accepting.url, 'analyze', { text: 'survives restart' });
      await accepting.close();
      const peer = await harness.openPeer();
      const restarted = await startJobsServer(peer);
      extra.push({
        close: async () => {
          await restarted.close();
          await peer.close();
        },
      });
      const done = await until(restarted.url, accepted.headers.location as string, 'succeeded');
      expect(done.status).toBe(303);
      const result = await http(`${restarted.url}${accepted.headers.location}/result`);
      expect(result.json).toEqual({ words: 2, text: 'survives restart' });
    });

    it('fails a job whose worker died on its last attempt, with a clear reason', async () => {
      await server.close(); // no other worker on these jobs until the dead one claimed
      const accepting = await startJobsServer(harness.store, { worker: false, operations: { analyze: { maxAttempts: 1 } } });
      extra.push(accepting);
      const accepted = await submit(accepting.url, 'analyze', { text: 'orphan' });
      // A worker that claims the job and dies: its lease is never renewed.
      const [claim] = await harness.store.claim({ workerId: 'dead-worker', leaseMs: 50 });
      expect(claim?.job.id).toBe(doc(accepted).id);
      const survivor = await startJobsServer(harness.store);
      extra.push(survivor);
      const failed = await until(survivor.url, accepted.headers.location as string, 'failed');
      expect(doc(failed).error).toMatchObject({ code: 'SB_JOB_FAILED' });
      expect(doc(failed).error?.detail).toContain('lease expired');
    });

    it('lets only the submitter see or cancel its job when auth is on', async () => {
      await server.close(); // its worker would run the job of the other service
      const authed = await startJobsServer(harness.store, {}, (req) => req.headers['x-user'] as string | undefined);
      extra.push(authed);
      const accepted = await submit(authed.url, 'gate', { tag: 'private' }, { 'x-user': 'alice' });
      const location = accepted.headers.location as string;
      expect((await http(`${authed.url}${location}`, { headers: { 'x-user': 'bob' } })).status).toBe(404);
      expect((await http(`${authed.url}${location}`)).status).toBe(404);
      expect((await http(`${authed.url}${location}`, { method: 'DELETE', headers: { 'x-user': 'bob' } })).status).toBe(404);
      expect((await http(`${authed.url}${location}/result`, { headers: { 'x-user': 'bob' } })).status).toBe(404);
      const own = await http(`${authed.url}${location}`, { headers: { 'x-user': 'alice' } });
      expect(own.status).toBe(200);
      await authed.state.started('private');
      expect(authed.state.seen.find((seen) => seen.operation === 'gate')?.principal).toBe('alice');
      authed.state.open('private');
      await until(authed.url, location, 'succeeded', { 'x-user': 'alice' });
    });

    it('bounds the queue: beyond maxQueued a submit answers 503 + Retry-After', async () => {
      await server.close(); // nothing drains the queue
      const bounded = await startJobsServer(harness.store, { worker: false, operations: { analyze: { maxQueued: 1 } } });
      extra.push(bounded);
      expect((await submit(bounded.url, 'analyze', { text: 'first' })).status).toBe(202);
      const full = await submit(bounded.url, 'analyze', { text: 'second' });
      expect(full.status).toBe(503);
      expect(full.headers['retry-after']).toBe('1');
      expect(problem(full).code).toBe('SB_OVERLOADED');
    });

    it('streams server-sent events on every change and ends at the final state', async () => {
      const accepted = await submit(server.url, 'gate', { tag: 'sse' });
      const location = accepted.headers.location as string;
      await server.state.started('sse');
      const response = await request(`${server.url}${location}`, { headers: { accept: 'text/event-stream' } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
      const statuses: string[] = [];
      let heartbeats = 0;
      let text = '';
      for await (const chunk of response.body) {
        text += chunk.toString();
        heartbeats = (text.match(/^: heartbeat$/gm) ?? []).length;
        if (heartbeats >= 1 && !statuses.includes('opened')) {
          statuses.push('opened');
          server.state.open('sse');
        }
      }
      for (const match of text.matchAll(/^event: status\ndata: (.*)$/gm))
        statuses.push((JSON.parse(match[1] as string) as JobStatusDocument).status);
      expect(statuses[0]).toBe('opened');
      expect(statuses.slice(1, 2)).toEqual(['running']);
      expect(statuses.at(-1)).toBe('succeeded');
      expect(text).toMatch(/^id: \d+$/m);
    });

    it('delivers a signed completion callback that verifies, records undelivered after retries, and refuses targets outside the allow-list', async () => {
      const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
      const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
      const receiver = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        req.on('end', () => {
          received.push({ headers: req.headers, body });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
      const down = createServer();
      await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
      const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
      await new Promise<void>((resolve) => down.close(() => resolve()));
      extra.push({ close: () => new Promise<void>((resolve) => receiver.close(() => resolve())) });
      await server.close(); // only the worker that knows the callbacks runs these jobs

      const hooked = await startJobsServer(harness.store, {
        callbacks: { allow: [receiverUrl, downUrl], secrets: [secret], attempts: 3, backoff: { baseMs: 5, maxMs: 10 }, timeoutMs: 1_000 },
      });
      extra.push(hooked);

      const accepted = await submit(hooked.url, 'analyze', { text: 'call me back' }, { 'switchboard-callback': `${receiverUrl}/hook?x=1` });
      expect(accepted.status).toBe(202);
      let delivered: JobStatusDocument | undefined;
      for (let i = 0; i < 200 && delivered?.callback?.state !== 'delivered'; i++) {
        delivered = doc(await http(`${hooked.url}${accepted.headers.location}`));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(delivered?.callback).toMatchObject({ state: 'delivered', attempts: 1 });
      expect(received).toHaveLength(1);
      const notice = verifyWebhook(received[0]!.headers, received[0]!.body, secret);
      expect(notice.id).toBe(`job_${doc(accepted).id}`);
      expect(JSON.parse(notice.body)).toMatchObject({
        type: 'job.succeeded',
        data: { id: doc(accepted).id, status: 'succeeded', result: { words: 3, text: 'call me back' } },
      });
      expect(() => verifyWebhook(received[0]!.headers, `${received[0]!.body} `, secret)).toThrow(SwitchboardError);

      const unreachable = await submit(hooked.url, 'analyze', { text: 'nobody home' }, { 'switchboard-callback': `${downUrl}/hook` });
      let undelivered: JobStatusDocument | undefined;
      for (let i = 0; i < 300 && undelivered?.callback?.state !== 'failed'; i++) {
        undelivered = doc(await http(`${hooked.url}${unreachable.headers.location}`));
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(undelivered?.status).toBe('succeeded');
      expect(undelivered?.callback).toMatchObject({ state: 'failed', attempts: 3 });
      expect(undelivered?.callback?.lastError).toBeTruthy();

      const before = await countJobs(harness.store);
      const refused = await submit(hooked.url, 'analyze', { text: 'x' }, { 'switchboard-callback': 'http://169.254.169.254/latest' });
      expect(refused.status).toBe(400);
      expect(problem(refused).code).toBe('SB_CALLBACK_NOT_ALLOWED');
      expect(await countJobs(harness.store)).toBe(before);
    });

    describe('client', () => {
      it('submits and waits for the typed result, reporting progress, with the same trace on every poll', async () => {
        const client = createJobsClient(analysis, { baseUrl: server.url });
        extra.push(client);
        const requests: JobRequestInfo[] = [];
        const progress: unknown[] = [];
        const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        const job = await client.submit(
          'analyze',
          { text: 'a b c d', steps: 4 },
          { traceparent, onRequest: (info) => requests.push(info) },
        );
        expect(job).toMatchObject({ operation: 'analyze', replayed: false });
        expect(job.statusUrl).toBe(`${server.url}/jobs/${job.jobId}`);
        const result = await client.wait(job, { onRequest: (info) => requests.push(info), onProgress: (value) => progress.push(value) });
        expect(result).toEqual({ words: 4, text: 'a b c d' });
        expect(requests[0]?.kind).toBe('submit');
        expect(requests.at(-1)?.kind).toBe('result');
        expect(requests.some((info) => info.kind === 'status')).toBe(true);
        for (const info of requests) expect(parseTraceparent(info.traceparent)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
        expect(new Set(requests.map((info) => info.traceparent)).size).toBe(requests.length);
        expect(parseTraceparent(server.state.seen.at(-1)?.traceparent)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
        for (const value of progress) expect(value).toMatchObject({ percent: expect.any(Number) });
        const status = await client.status(job);
        expect(status.status).toBe('succeeded');
      });

      it('follows server-sent events when asked', async () => {
        const client = createJobsClient(analysis, { baseUrl: server.url, wait: { transport: 'sse' } });
        extra.push(client);
        const requests: JobRequestInfo[] = [];
        const job = await client.submit('gate', { tag: 'client-sse' });
        const waiting = client.wait(job, { onRequest: (info) => requests.push(info) });
        await server.state.started('client-sse');
        server.state.open('client-sse');
        expect(await waiting).toEqual({ tag: 'client-sse' });
        expect(requests.map((info) => info.kind)).toEqual(['events', 'result']);
      });

      it('throws the declared error, SB_JOB_FAILED with the problem, or SB_JOB_CANCELED', async () => {
        const client = createJobsClient(analysis, { baseUrl: server.url });
        extra.push(client);
        const declared = await client.run('analyze', { text: 'x', fail: 'declared' }).catch((error: unknown) => error);
        expect(declared).toBeInstanceOf(OperationError);
        expect(declared).toMatchObject({ code: 'Unreadable', data: { reason: 'gibberish' }, status: 422 });
        const failed = await client.run('analyze', { text: 'x', fail: 'throw' }).catch((error: unknown) => error);
        expect(failed).toBeInstanceOf(SwitchboardError);
        expect(failed).toMatchObject({ code: 'SB_JOB_FAILED', extensions: { problem: { code: 'SB_HANDLER_FAILED' } } });
        const job = await client.submit('gate', { tag: 'client-cancel' });
        await server.state.started('client-cancel');
        const waiting = client.wait(job).catch((error: unknown) => error);
        const canceling = await client.cancel(job);
        expect(['running', 'canceled']).toContain(canceling.status);
        expect(await waiting).toMatchObject({ code: 'SB_JOB_CANCELED' });
        await expect(client.cancel(job)).rejects.toMatchObject({ code: 'SB_JOB_FINISHED' });
        await expect(client.status('AAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ code: 'SB_NOT_FOUND' });
      });

      it('stops at its deadline (cancelling the job when asked) and on abort', async () => {
        const client = createJobsClient(analysis, { baseUrl: server.url });
        extra.push(client);
        const job = await client.submit('gate', { tag: 'deadline' });
        await server.state.started('deadline');
        const late = await client.wait(job, { timeoutMs: 300, cancelOnAbort: true }).catch((error: unknown) => error);
        expect(late).toMatchObject({ code: 'SB_DEADLINE_EXCEEDED' });
        expect((await until(server.url, new URL(job.statusUrl).pathname, 'canceled')).status).toBe(200);
        expect(server.state.signals.get('deadline')?.aborted).toBe(true);

        const other = await client.submit('gate', { tag: 'abort' });
        await server.state.started('abort');
        const controller = new AbortController();
        const waiting = client.wait(other, { signal: controller.signal }).catch((error: unknown) => error);
        setTimeout(() => controller.abort(new Error('user left')), 50);
        expect(await waiting).toMatchObject({ code: 'SB_ABORTED' });
        expect((await client.status(other)).status).toBe('running');
        server.state.open('abort');
      });

      it('never creates a second job for a retried submit (same Idempotency-Key)', async () => {
        const client = createJobsClient(analysis, { baseUrl: server.url });
        extra.push(client);
        const first = await client.submit('gate', { tag: 'idem' }, { idempotencyKey: 'order-42' });
        const again = await client.submit('gate', { tag: 'idem' }, { idempotencyKey: 'order-42' });
        expect(again.jobId).toBe(first.jobId);
        expect(again.replayed).toBe(true);
        await expect(client.submit('gate', { tag: 'other' }, { idempotencyKey: 'order-42' })).rejects.toMatchObject({
          code: 'SB_IDEMPOTENCY_KEY_REUSED',
        });
        // Another instance of the service (its own idempotency memory) finds the job through the store.
        const peer = await startJobsServer(harness.store, { worker: false });
        extra.push(peer);
        const elsewhere = await submit(peer.url, 'gate', { tag: 'idem' }, { 'idempotency-key': 'order-42' });
        expect(doc(elsewhere).id).toBe(first.jobId);
        expect(await countJobs(harness.store)).toBe(1);
        await server.state.started('idem');
        server.state.open('idem');
        expect(await client.wait(first)).toEqual({ tag: 'idem' });
      });
    });
  });
}
