import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineContract, implement, operation, parseTraceparent } from '@switchboard/core';
import { createMemoryJobStore } from '@switchboard/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, createHttpService, createJobsClient, enableJobs, generateWebhookSecret } from '../src/index.js';

/**
 * W3C Trace Context on every request of the async HTTP paths: the submit, every poll (status,
 * long-poll, event stream), the result fetch and cancel carry the job's trace and its
 * `tracestate`; the completion callback continues the submitter's trace; a tracestate that the
 * caller passes without a valid traceparent, or an invalid one, is never sent.
 */
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE}-00f067aa0ba902b7-01`;

const contract = defineContract({
  name: 'trace-paths',
  operations: {
    work: operation({
      input: z.object({ ms: z.number() }),
      output: z.object({ traceparent: z.string(), tracestate: z.string().optional() }),
    }),
  },
});

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** A recording proxy in front of `target`: what each request carried on the way in. */
async function recordingProxy(target: string): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const forward = request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('trace context on the async HTTP paths', () => {
  const callbacks: IncomingHttpHeaders[] = [];
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      callbacks.push(req.headers);
      res.end();
    });
  });
  const store = createMemoryJobStore();
  let jobs: ReturnType<typeof enableJobs>;
  let service: ReturnType<typeof createHttpService>;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let receiverUrl = '';

  beforeAll(async () => {
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
    jobs = enableJobs(contract, {
      store,
      operations: { work: true },
      callbacks: { allow: [receiverUrl], secrets: [generateWebhookSecret()], attempts: 1 },
    });
    service = createHttpService({
      contract,
      handlers: implement(contract, {
        work: async ({ ms }, ctx) => {
          await new Promise((resolve) => setTimeout(resolve, ms));
          return ctx.tracestate === undefined
            ? { traceparent: ctx.traceparent ?? '' }
            : { traceparent: ctx.traceparent ?? '', tracestate: ctx.tracestate };
        },
      }),
      routes: jobs.routes,
      interceptors: jobs.interceptors,
    });
    jobs.start(service);
    const { url } = await service.listen({ port: 0, host: '127.0.0.1' });
    proxy = await recordingProxy(url);
  });
  afterAll(async () => {
    await proxy.close();
    await jobs.close({ timeoutMs: 1000 });
    await service.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  it.each(['poll', 'long-poll', 'sse'] as const)(
    'sends the trace and tracestate with the submit, every %s request and the result fetch; the callback continues it',
    async (transport) => {
      const client = createJobsClient(contract, { baseUrl: proxy.url });
      try {
        proxy.seen.length = 0;
        callbacks.length = 0;
        const job = await client.submit(
          'work',
          { ms: 200 },
          { traceparent: PARENT, tracestate: 'a=1 ,\tb=2', callbackUrl: `${receiverUrl}/hook` },
        );
        expect(job.tracestate).toBe('a=1,b=2');
        const result = await client.wait(job, { transport, intervalMs: 20, minIntervalMs: 10 });
        expect(parseTraceparent(result.traceparent)?.traceId).toBe(TRACE);
        expect(result.tracestate).toBe('a=1,b=2');
        await client.status(job);
        const kinds = new Set<string>();
        for (const { method, url, headers } of proxy.seen) {
          kinds.add(`${method} ${url.split('?')[0]?.replace(/[^/]+$/, '*')}`);
          expect(parseTraceparent(headers.traceparent)?.traceId, `${method} ${url}`).toBe(TRACE);
          expect(headers.tracestate, `${method} ${url}`).toBe('a=1,b=2');
        }
        expect(proxy.seen.length).toBeGreaterThanOrEqual(3);
        expect(new Set(proxy.seen.map((s) => s.headers.traceparent)).size).toBe(proxy.seen.length);
        expect([...kinds].some((kind) => kind.startsWith('POST /ops/'))).toBe(true);
        expect([...kinds].filter((kind) => kind.startsWith('GET ')).length).toBeGreaterThanOrEqual(1);
        for (let i = 0; i < 100 && callbacks.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(callbacks).toHaveLength(1);
        expect(parseTraceparent(callbacks[0]?.traceparent)?.traceId).toBe(TRACE);
        expect(callbacks[0]?.tracestate).toBe('a=1,b=2');
      } finally {
        await client.close();
      }
    },
  );

  it('cancel and status of a job by id alone start a trace of their own, without a tracestate', async () => {
    const client = createJobsClient(contract, { baseUrl: proxy.url });
    try {
      const job = await client.submit('work', { ms: 2000 }, { traceparent: PARENT, tracestate: 'a=1' });
      proxy.seen.length = 0;
      await client.status(job.jobId);
      await client.cancel(job.jobId);
      expect(proxy.seen).toHaveLength(2);
      for (const { headers } of proxy.seen) {
        expect(parseTraceparent(headers.traceparent)?.traceId).not.toBe(TRACE);
        expect(headers.tracestate).toBeUndefined();
      }
    } finally {
      await client.close();
    }
  });

  it('never sends a tracestate the caller gives without a valid traceparent, or an invalid one', async () => {
    const client = createClient(contract, { baseUrl: proxy.url });
    try {
      proxy.seen.length = 0;
      await client.call('work', { ms: 0 }, { tracestate: 'a=1' });
      await client.call('work', { ms: 0 }, { traceparent: `${PARENT}-x`, tracestate: 'a=1' });
      await client.call('work', { ms: 0 }, { traceparent: PARENT, tracestate: 'A=1' });
      await client.call('work', { ms: 0 }, { traceparent: `00-${TRACE}-00f067aa0ba902b7-ff`, tracestate: '' });
      expect(proxy.seen).toHaveLength(4);
      for (const { headers } of proxy.seen) expect(headers.tracestate).toBeUndefined();
      expect(parseTraceparent(proxy.seen[2]?.headers.traceparent)?.traceId).toBe(TRACE);
      expect(proxy.seen[3]?.headers.traceparent).toMatch(/-03$/);
    } finally {
      await client.close();
    }
  });
});
