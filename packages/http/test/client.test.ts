import diagnosticsChannel from 'node:diagnostics_channel';
import { OperationError, parseTraceparent, SwitchboardError } from '@switchboard/core';
import { createClient } from '@switchboard/http';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from './client-peer.js';
import { accounts, sendJson, sendProblem, startPeer } from './client-peer.js';

let peer: Peer | undefined;
const clients: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await peer?.close();
  peer = undefined;
});

async function setup(respond: Parameters<typeof startPeer>[0], options: Partial<Parameters<typeof createClient>[1]> = {}) {
  peer = await startPeer(respond);
  const client = createClient(accounts, { baseUrl: peer.url, ...options });
  clients.push(client);
  return { peer, client };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

describe('client: sync calls', () => {
  it('posts the input as JSON to /ops/{operation} and returns the output', async () => {
    const { peer, client } = await setup((request, response) => {
      const input = JSON.parse(request.body) as { name: string };
      sendJson(response, 200, { id: 'a1', name: input.name });
    });
    const output = await client.call('save', { name: 'Ada' }, { timeoutMs: 5_000 });
    expect(output).toEqual({ id: 'a1', name: 'Ada' });
    const [request] = peer.received;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/ops/save');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers.accept).toBe('application/json');
    expect(JSON.parse(request?.body ?? '')).toEqual({ name: 'Ada' });
    const budget = Number(request?.headers['switchboard-timeout-ms']);
    expect(budget).toBeGreaterThan(0);
    expect(budget).toBeLessThanOrEqual(5_000);
    expect(parseTraceparent(request?.headers.traceparent as string)).toBeDefined();
  });

  it('mounts under the path of baseUrl and sends the configured headers', async () => {
    const { peer } = await setup((_request, response) => sendJson(response, 200, { id: 'a1', name: 'Ada' }));
    const prefixed = createClient(accounts, { baseUrl: `${peer.url}/api/`, headers: { Authorization: 'Bearer t' } });
    clients.push(prefixed);
    await prefixed.call('save', { name: 'Ada' }, { headers: { 'X-Request-Id': 'r1' } });
    expect(peer.received[0]?.path).toBe('/api/ops/save');
    expect(peer.received[0]?.headers.authorization).toBe('Bearer t');
    expect(peer.received[0]?.headers['x-request-id']).toBe('r1');
  });

  it('validates the input before sending and reports the failing fields', async () => {
    const { peer, client } = await setup((_request, response) => sendJson(response, 200, {}));
    const error = await rejection(client.call('save', { name: '' }));
    expect(error).toBeInstanceOf(SwitchboardError);
    expect((error as SwitchboardError).code).toBe('SB_VALIDATION');
    expect((error as SwitchboardError).errors?.[0]?.pointer).toBe('/name');
    expect(peer.received).toHaveLength(0);
  });

  it("rebuilds the server's validation problem with its field errors", async () => {
    const { peer, client } = await setup(
      (_request, response) =>
        sendProblem(response, 400, { code: 'SB_VALIDATION', detail: 'bad', errors: [{ pointer: '/name', message: 'Too small' }] }),
      { validateInput: false },
    );
    const remote = (await rejection(client.call('save', { name: '' }))) as SwitchboardError;
    expect(peer.received).toHaveLength(1);
    expect(remote.code).toBe('SB_VALIDATION');
    expect(remote.status).toBe(400);
    expect(remote.errors).toEqual([{ pointer: '/name', message: 'Too small' }]);
  });

  it('returns a declared error as a typed OperationError with its data', async () => {
    const { client } = await setup((_request, response) =>
      sendProblem(response, 409, {
        type: 'urn:switchboard:accounts:error:NameTaken',
        code: 'NameTaken',
        detail: 'Ada exists',
        data: { existing: 'a0' },
      }),
    );
    const error = await rejection(client.call('save', { name: 'Ada' }));
    expect(error).toBeInstanceOf(OperationError);
    expect(client.isError(error, 'save', 'NameTaken')).toBe(true);
    expect(client.isError(error, 'save', 'Busy')).toBe(false);
    if (client.isError(error, 'save', 'NameTaken')) {
      expect(error.data.existing).toBe('a0');
      expect(error.status).toBe(409);
      expect(error.detail).toBe('Ada exists');
    }

    const result = await client.result('save', { name: 'Ada' });
    expect(result.ok).toBe(false);
    if (!result.ok && result.error instanceof OperationError) {
      switch (result.error.code) {
        case 'NameTaken':
          expect(result.error.data.existing).toBe('a0');
          break;
        case 'Busy':
          throw new Error('wrong code');
      }
    } else {
      throw new Error('expected a declared error');
    }
  });

  it('result() resolves ok with the value on success', async () => {
    const { client } = await setup((_request, response) => sendJson(response, 200, { id: 'a2', name: 'Bo' }));
    expect(await client.result('save', { name: 'Bo' })).toEqual({ ok: true, value: { id: 'a2', name: 'Bo' } });
  });

  it('rebuilds registry problems, keeping status and Retry-After, and keeps unknown codes', async () => {
    const { client } = await setup((request, response) => {
      if (request.body.includes('first')) sendProblem(response, 429, { code: 'SB_TOO_MANY_REQUESTS' }, { 'retry-after': '7' });
      else sendProblem(response, 418, { code: 'Teapot', detail: 'short and stout' });
    });
    const limited = (await rejection(client.call('save', { name: 'first' }, { retry: false }))) as SwitchboardError;
    expect(limited.code).toBe('SB_TOO_MANY_REQUESTS');
    expect(limited.status).toBe(429);
    expect(limited.retryAfterMs).toBe(7_000);
    const foreign = (await rejection(client.call('save', { name: 'second' }))) as SwitchboardError;
    expect(foreign).toBeInstanceOf(SwitchboardError);
    expect(foreign.code).toBe('SB_INTERNAL');
    expect(foreign.status).toBe(418);
    expect(foreign.extensions.upstreamCode).toBe('Teapot');
  });

  it('answers SB_BAD_GATEWAY for a body that is not JSON or not a problem', async () => {
    const { client } = await setup((request, response) => {
      const { name } = JSON.parse(request.body) as { name: string };
      if (name === 'html') {
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end('<html>hello</html>');
      } else if (name === 'broken') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"id": ');
      } else {
        sendJson(response, 500, { oops: true });
      }
    });
    for (const name of ['html', 'broken', 'plain']) {
      const error = (await rejection(client.call('save', { name }, { retry: false }))) as SwitchboardError;
      expect(error).toBeInstanceOf(SwitchboardError);
      expect(error.code).toBe('SB_BAD_GATEWAY');
    }
  });

  it('validates outputs and declared error data on receipt when asked', async () => {
    const { client } = await setup(
      (request, response) => {
        const { id } = JSON.parse(request.body) as { id: string };
        if (id === 'bad') sendJson(response, 200, { id: 1 });
        else sendJson(response, 200, { id, name: 'Ada', createdAt: '2024-01-02T03:04:05.000Z' });
      },
      { validateOutput: true },
    );
    const output = await client.call('get', { id: 'a1' });
    expect(output.createdAt).toBeInstanceOf(Date);
    expect(output.createdAt.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    const error = (await rejection(client.call('get', { id: 'bad' }, { retry: false }))) as SwitchboardError;
    expect(error.code).toBe('SB_BAD_GATEWAY');
    expect(error.errors?.map((field) => field.pointer)).toContain('/id');
  });

  it('fails unknown operations and calls on a closed client without sending', async () => {
    const { peer, client } = await setup((_request, response) => sendJson(response, 200, {}));
    const unknown = (await rejection(
      (client.call as (operation: string, input: unknown) => Promise<unknown>)('drop', {}),
    )) as SwitchboardError;
    expect(unknown.code).toBe('SB_UNKNOWN_OPERATION');
    await client.close();
    const closed = (await rejection(client.call('save', { name: 'Ada' }))) as SwitchboardError;
    expect(closed.code).toBe('SB_CLOSED');
    expect(peer.received).toHaveLength(0);
  });

  it('sends through an injected dispatcher and leaves it open on close', async () => {
    const agent = new Agent({ connections: 2 });
    try {
      const { peer, client } = await setup((_request, response) => sendJson(response, 200, { id: 'a1', name: 'Ada' }), {
        dispatcher: agent,
      });
      await client.call('save', { name: 'Ada' });
      await client.close();
      expect(agent.closed).toBe(false);
      const again = createClient(accounts, { baseUrl: peer.url, dispatcher: agent });
      expect(await again.call('save', { name: 'Ada' })).toEqual({ id: 'a1', name: 'Ada' });
      expect(peer.received).toHaveLength(2);
    } finally {
      await agent.close();
    }
  });
});

describe('client: trace context and diagnostics', () => {
  const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('continues the caller trace with a new span id and forwards tracestate', async () => {
    const { peer, client } = await setup((_request, response) => sendJson(response, 200, { id: 'a1', name: 'Ada' }));
    await client.call('save', { name: 'Ada' }, { traceparent: parent, tracestate: 'vendor=1' });
    const sent = parseTraceparent(peer.received[0]?.headers.traceparent as string);
    expect(sent?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(sent?.parentId).not.toBe('b7ad6b7169203331');
    expect(sent?.flags).toBe('01');
    expect(peer.received[0]?.headers.tracestate).toBe('vendor=1');
  });

  it("passes a handler context's deadline and trace on", async () => {
    const { peer, client } = await setup((_request, response) => sendJson(response, 200, { id: 'a1', name: 'Ada' }));
    await client.call('save', { name: 'Ada' }, { context: { deadline: Date.now() + 800, traceparent: parent } });
    expect(Number(peer.received[0]?.headers['switchboard-timeout-ms'])).toBeLessThanOrEqual(800);
    expect(parseTraceparent(peer.received[0]?.headers.traceparent as string)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('starts a trace when there is none and keeps it across retries', async () => {
    const { peer, client } = await setup(
      (_request, response, index) =>
        index === 0
          ? sendProblem(response, 503, { code: 'SB_OVERLOADED' })
          : sendJson(response, 200, { id: 'a1', name: 'A', createdAt: 'x' }),
      { retry: { baseMs: 1, maxMs: 1 } },
    );
    await client.call('get', { id: 'a1' });
    const [first, second] = peer.received.map((request) => parseTraceparent(request.headers.traceparent as string));
    expect(first).toBeDefined();
    expect(second?.traceId).toBe(first?.traceId);
    expect(second?.parentId).not.toBe(first?.parentId);
  });

  it('traces the call and each attempt on switchboard:call and switchboard:call:attempt', async () => {
    const { peer, client } = await setup((_request, response) => sendJson(response, 200, { id: 'a1', name: 'Ada' }));
    const seen: { name: string; message: Record<string, unknown> }[] = [];
    const onRequest = (message: unknown) => seen.push({ name: 'request', message: message as Record<string, unknown> });
    const onResponse = (message: unknown) => seen.push({ name: 'response', message: message as Record<string, unknown> });
    const onCall = (message: unknown) => seen.push({ name: 'call', message: message as Record<string, unknown> });
    diagnosticsChannel.subscribe('tracing:switchboard:call:attempt:start', onRequest);
    diagnosticsChannel.subscribe('tracing:switchboard:call:attempt:asyncEnd', onResponse);
    diagnosticsChannel.subscribe('tracing:switchboard:call:asyncEnd', onCall);
    try {
      await client.call('save', { name: 'Ada' });
    } finally {
      diagnosticsChannel.unsubscribe('tracing:switchboard:call:attempt:start', onRequest);
      diagnosticsChannel.unsubscribe('tracing:switchboard:call:attempt:asyncEnd', onResponse);
      diagnosticsChannel.unsubscribe('tracing:switchboard:call:asyncEnd', onCall);
    }
    expect(seen.map((entry) => entry.name)).toEqual(['request', 'response', 'call']);
    expect(seen[2]?.message).toMatchObject({ operation: 'save', method: 'POST', attempts: 1, status: 200, outcome: 'ok' });
    expect(seen[0]?.message).toMatchObject({ operation: 'save', url: `${peer.url}/ops/save`, attempt: 1 });
    expect(seen[0]?.message.traceparent).toBe(peer.received[0]?.headers.traceparent);
    expect(seen[1]?.message).toMatchObject({ operation: 'save', status: 200 });
    expect(typeof seen[1]?.message.durationMs).toBe('number');
  });
});
