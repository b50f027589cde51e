import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseTraceparent, SwitchboardError, subscribeTracing, tracing } from '@switchboard/core';
import type { HttpService } from '@switchboard/http';
import { createHttpService } from '@switchboard/http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mounted } from './server-cases.js';
import { coreCases, post, problemOf } from './server-cases.js';
import { contract, createHandlers, rawExchange, waitFor } from './server-fixture.js';

const JSON_HEADERS = { 'content-type': 'application/json' };

describe('createHttpService on node:http', () => {
  const errors: unknown[] = [];
  let service: HttpService;
  let mounted: Mounted;
  let port: number;

  beforeAll(async () => {
    const { handlers, state } = createHandlers();
    service = createHttpService({ contract, handlers, bodyTimeoutMs: 200, onError: (error) => errors.push(error) });
    const address = await service.listen({ port: 0 });
    port = address.port;
    mounted = { base: address.url, state };
  });
  afterAll(() => service.close({ timeoutMs: 100 }));

  coreCases(() => mounted);

  it('tells onError about the original error of a 500', async () => {
    const before = errors.length;
    await post(mounted.base, 'fail', JSON.stringify({ how: 'throw' }));
    expect(errors.slice(before).map((error) => (error as Error).message)).toContain('database password is hunter2');
  });

  it('answers 500 SB_HANDLER_FAILED for an OperationError the contract does not declare', async () => {
    const answer = await post(mounted.base, 'fail', JSON.stringify({ how: 'undeclared' }));
    expect(answer.status).toBe(500);
    expect(problemOf(answer.json).code).toBe('SB_HANDLER_FAILED');
    expect(answer.text).not.toContain('secret detail');
  });

  it('answers a SwitchboardError thrown by a handler with its code, status and Retry-After, not its message', async () => {
    const answer = await post(mounted.base, 'fail', JSON.stringify({ how: 'switchboard' }));
    expect(answer.status).toBe(409);
    expect(answer.headers['retry-after']).toBe('2');
    expect(problemOf(answer.json)).toMatchObject({ code: 'SB_CONFLICT', detail: 'Operation fail failed' });
    expect(answer.text).not.toContain('The name changed meanwhile');
  });

  it('answers 500 SB_INVALID_OUTPUT when a declared error carries data that fails its schema', async () => {
    const answer = await post(mounted.base, 'fail', JSON.stringify({ how: 'bad-data' }));
    expect(answer.status).toBe(500);
    expect(problemOf(answer.json).code).toBe('SB_INVALID_OUTPUT');
    expect(answer.text).not.toContain('nope');
  });

  it("answers 504 at the operation's own timeoutMs even if the handler hangs", async () => {
    const quick = createHttpService({
      contract: { ...contract, operations: { ...contract.operations, hang: { ...contract.operations.hang, timeoutMs: 30 } } },
      handlers: createHandlers().handlers,
    });
    const { url } = await quick.listen();
    try {
      const answer = await post(url, 'hang', '{}');
      expect(answer.status).toBe(504);
      expect(problemOf(answer.json).code).toBe('SB_DEADLINE_EXCEEDED');
    } finally {
      await quick.close({ timeoutMs: 50 });
    }
  });

  it('answers 400 to a malformed Switchboard-Timeout-Ms or an overlong Idempotency-Key', async () => {
    const timeout = await post(mounted.base, 'save', JSON.stringify({ name: 'x' }), { ...JSON_HEADERS, 'switchboard-timeout-ms': 'soon' });
    expect(timeout.status).toBe(400);
    expect(problemOf(timeout.json).code).toBe('SB_BAD_REQUEST');
    const key = await post(mounted.base, 'save', JSON.stringify({ name: 'x' }), { ...JSON_HEADERS, 'idempotency-key': 'k'.repeat(256) });
    expect(key.status).toBe(400);
  });

  it('answers 408 to a client that never finishes its body, closes it, and stays responsive', async () => {
    const slow = rawExchange(
      port,
      'POST /ops/save HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":',
    );
    const meanwhile = await post(mounted.base, 'save', JSON.stringify({ name: 'fast' }));
    expect(meanwhile.status).toBe(200);
    const raw = await slow;
    expect(raw).toMatch(/^HTTP\/1\.1 408 /);
    expect(raw.toLowerCase()).toContain('connection: close');
    expect(raw).toContain('SB_REQUEST_TIMEOUT');
  });

  it('answers 404 SB_NOT_FOUND outside the service paths', async () => {
    const answer = await request(`${mounted.base}/elsewhere`);
    expect(answer.statusCode).toBe(404);
    expect(problemOf(await answer.body.json()).code).toBe('SB_NOT_FOUND');
  });

  it('answers 422 when an Idempotency-Key comes back with another body', async () => {
    const headers = { ...JSON_HEADERS, 'idempotency-key': `key-${Math.random()}` };
    expect((await post(mounted.base, 'count', JSON.stringify({ by: 1 }), headers)).status).toBe(200);
    const reused = await post(mounted.base, 'count', JSON.stringify({ by: 2 }), headers);
    expect(reused.status).toBe(422);
    expect(problemOf(reused.json).code).toBe('SB_IDEMPOTENCY_KEY_REUSED');
  });

  it('answers 409 with Retry-After while the first request of a key still runs', async () => {
    const headers = { ...JSON_HEADERS, 'idempotency-key': `key-${Math.random()}` };
    const body = JSON.stringify({ tag: 'in-progress' });
    const first = post(mounted.base, 'gate', body, headers);
    await waitFor(() => mounted.state.waiting === 1);
    const second = await post(mounted.base, 'gate', body, headers);
    mounted.state.open();
    expect(second.status).toBe(409);
    expect(second.headers['retry-after']).toBe('1');
    expect(problemOf(second.json).code).toBe('SB_IDEMPOTENCY_IN_PROGRESS');
    expect((await first).status).toBe(200);
  });

  it('runs the handler once for a replayed key, and again after a 5xx', async () => {
    const headers = { ...JSON_HEADERS, 'idempotency-key': `key-${Math.random()}` };
    const before = mounted.state.total;
    await post(mounted.base, 'count', JSON.stringify({ by: 10 }), headers);
    await post(mounted.base, 'count', JSON.stringify({ by: 10 }), headers);
    expect(mounted.state.total - before).toBe(10);
    const failing = { ...JSON_HEADERS, 'idempotency-key': `key-${Math.random()}` };
    const errorsBefore = errors.length;
    await post(mounted.base, 'fail', JSON.stringify({ how: 'throw' }), failing);
    const again = await post(mounted.base, 'fail', JSON.stringify({ how: 'throw' }), failing);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(errors.length - errorsBefore).toBe(2);
  });

  it('continues the caller trace and traces the handler on switchboard:handler', async () => {
    const seen: Array<{ name: string; message: Record<string, unknown> }> = [];
    const handlers = {
      start: (message: unknown) => seen.push({ name: 'start', message: message as Record<string, unknown> }),
      asyncEnd: (message: unknown) => seen.push({ name: 'end', message: message as Record<string, unknown> }),
    };
    const unsubscribe = subscribeTracing(tracing.handler, handlers);
    try {
      const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await post(mounted.base, 'echo', JSON.stringify({ text: 'trace' }), { ...JSON_HEADERS, traceparent: incoming });
      await post(mounted.base, 'echo', JSON.stringify({ text: 'fresh' }));
    } finally {
      unsubscribe();
    }
    const starts = seen.filter((entry) => entry.name === 'start');
    expect(starts).toHaveLength(2);
    const continued = parseTraceparent(starts[0]?.message.traceparent as string);
    expect(continued?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(continued?.parentId).not.toBe('b7ad6b7169203331');
    const started = parseTraceparent(starts[1]?.message.traceparent as string);
    expect(started?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(started?.traceId).not.toBe(continued?.traceId);
    const end = seen.find((entry) => entry.name === 'end');
    expect(end?.message).toMatchObject({ service: contract.name, operation: 'echo', via: 'http', outcome: 'ok', status: 200 });
    expect(typeof end?.message.durationMs).toBe('number');
  });
});

describe('load shedding', () => {
  it('answers 503 SB_OVERLOADED with Retry-After beyond maxInFlight', async () => {
    const { handlers, state } = createHandlers();
    const service = createHttpService({ contract, handlers, maxInFlight: 1, retryAfterSeconds: 3 });
    const { url } = await service.listen();
    try {
      const busy = post(url, 'gate', '{}');
      await waitFor(() => state.waiting === 1);
      const shed = await post(url, 'save', JSON.stringify({ name: 'x' }));
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('3');
      expect(problemOf(shed.json)).toMatchObject({ code: 'SB_OVERLOADED', retryable: true });
      state.open();
      expect((await busy).status).toBe(200);
      expect((await post(url, 'save', JSON.stringify({ name: 'x' }))).status).toBe(200);
    } finally {
      await service.close({ timeoutMs: 100 });
    }
  });
});

describe('graceful shutdown', () => {
  it('drains an in-flight request, then refuses connections', async () => {
    const { handlers, state } = createHandlers();
    const service = createHttpService({ contract, handlers });
    const { url } = await service.listen();
    const inFlight = post(url, 'gate', '{}');
    await waitFor(() => state.waiting === 1);
    const closed = service.close({ timeoutMs: 5000 });
    expect(service.ready).toBe(false);
    state.open();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ done: true });
    await closed;
    await expect(request(`${url}/healthz`)).rejects.toThrow();
  });

  it('answers /readyz 503 and new calls 503 while draining when mounted on a foreign server', async () => {
    const { handlers, state } = createHandlers();
    const service = createHttpService({ contract, handlers });
    const server = createServer(service.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const inFlight = post(url, 'gate', '{}');
      await waitFor(() => state.waiting === 1);
      const closed = service.close({ timeoutMs: 5000 });
      const ready = await request(`${url}/readyz`);
      expect(ready.statusCode).toBe(503);
      expect(await ready.body.json()).toEqual({ status: 'draining' });
      const health = await request(`${url}/healthz`);
      expect(health.statusCode).toBe(200);
      await health.body.dump();
      const refused = await post(url, 'save', JSON.stringify({ name: 'late' }));
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      state.open();
      expect((await inFlight).status).toBe(200);
      await closed;
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('aborts handlers and force-closes after the timeout', async () => {
    const { handlers, state } = createHandlers();
    const service = createHttpService({ contract, handlers });
    const { url } = await service.listen();
    const stuck = post(url, 'slow', JSON.stringify({ ms: 60_000 })).catch((error: unknown) => error);
    await waitFor(() => state.signals.length === 1);
    await service.close({ timeoutMs: 50 });
    expect(state.signals[0]?.aborted).toBe(true);
    expect(state.signals[0]?.reason).toBeInstanceOf(SwitchboardError);
    const outcome = await stuck;
    // Either the handler honoured the abort in time (503) or the socket was closed under it.
    if (outcome instanceof Error) expect(outcome).toBeInstanceOf(Error);
    else expect((outcome as { status: number }).status).toBe(503);
  });
});
