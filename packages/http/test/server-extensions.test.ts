import type { HttpRoute, OperationInterceptor } from '@switchboard/http';
import { createHttpService, sendJson } from '@switchboard/http';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { post, problemOf } from './server-cases.js';
import { contract, createHandlers } from './server-fixture.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('extension points', () => {
  it('serves extra routes under the base path, with 405 + Allow and the body limit', async () => {
    const received: unknown[] = [];
    const routes: HttpRoute[] = [
      { methods: ['GET'], path: '/jobs/', handle: (_req, res, ctx) => sendJson(res, 200, { path: ctx.path, query: ctx.query }) },
      {
        methods: ['POST'],
        path: '/events',
        handle: async (_req, res, ctx) => {
          received.push(JSON.parse((await ctx.readBody()).toString()));
          sendJson(res, 202, { accepted: true });
        },
      },
    ];
    const service = createHttpService({ contract, handlers: createHandlers().handlers, basePath: '/v1', routes, bodyLimit: 64 });
    const { url } = await service.listen();
    try {
      const job = await request(`${url}/v1/jobs/abc?wait=5`);
      expect(await job.body.json()).toEqual({ path: '/jobs/abc', query: 'wait=5' });
      const wrong = await request(`${url}/v1/jobs/abc`, { method: 'DELETE' });
      expect(wrong.statusCode).toBe(405);
      expect(wrong.headers.allow).toBe('GET');
      await wrong.body.dump();
      const event = await request(`${url}/v1/events`, { method: 'POST', body: '{"id":"1"}' });
      expect(event.statusCode).toBe(202);
      await event.body.dump();
      expect(received).toEqual([{ id: '1' }]);
      const big = await request(`${url}/v1/events`, { method: 'POST', body: 'x'.repeat(1000) });
      expect(big.statusCode).toBe(413);
      expect(problemOf(await big.body.json()).code).toBe('SB_BODY_TOO_LARGE');
      expect((await post(`${url}/v1`, 'save', JSON.stringify({ name: 'base' }))).status).toBe(200);
      expect((await request(`${url}/ops/save`, { method: 'POST', headers: JSON_HEADERS, body: '{}' })).statusCode).toBe(404);
    } finally {
      await service.close({ timeoutMs: 100 });
    }
  });

  it('lets an interceptor take a call over, with the validated input and context, and stores its answer', async () => {
    const { handlers, state } = createHandlers();
    const seen: Array<{ input: unknown; traceparent: string | undefined; key: string | undefined }> = [];
    const respondAsync: OperationInterceptor = (call) => {
      if (call.req.headers.prefer !== 'respond-async') return undefined;
      seen.push({ input: call.input, traceparent: call.context.traceparent, key: call.context.idempotencyKey });
      return { status: 202, headers: { Location: `/jobs/${seen.length}`, 'Retry-After': '1' }, body: { id: String(seen.length) } };
    };
    const service = createHttpService({ contract, handlers, interceptors: [respondAsync] });
    const { url } = await service.listen();
    try {
      const headers = { ...JSON_HEADERS, prefer: 'respond-async', 'idempotency-key': 'job-1' };
      const accepted = await post(url, 'count', JSON.stringify({ by: 3 }), headers);
      expect(accepted.status).toBe(202);
      expect(accepted.headers.location).toBe('/jobs/1');
      expect(accepted.json).toEqual({ id: '1' });
      expect(seen[0]).toMatchObject({ input: { by: 3 }, key: 'job-1' });
      expect(seen[0]?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
      const replay = await post(url, 'count', JSON.stringify({ by: 3 }), headers);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.headers.location).toBe('/jobs/1');
      expect(seen).toHaveLength(1);
      expect(state.total).toBe(0);
      const inline = await post(url, 'count', JSON.stringify({ by: 3 }));
      expect(inline.json).toEqual({ total: 3 });
    } finally {
      await service.close({ timeoutMs: 100 });
    }
  });

  it('runs an operation without HTTP through invoke, for job runners', async () => {
    const service = createHttpService({ contract, handlers: createHandlers().handlers });
    const context = { operation: 'save', via: 'job' as const, signal: new AbortController().signal, progress: () => {} };
    expect(await service.invoke('save', { name: 'job', tags: [] }, context)).toEqual({
      ok: true,
      value: { id: 1, name: 'job', tags: [] },
    });
    const failed = await service.invoke('save', { name: 'taken', tags: [] }, context);
    expect(failed.ok ? undefined : failed.problem).toMatchObject({ status: 409, code: 'NameTaken', data: { existing: 7 } });
    const unknown = await service.invoke('nope', {}, context);
    expect(unknown.ok ? undefined : unknown.problem.code).toBe('SB_UNKNOWN_OPERATION');
    await service.close();
  });
});
