import { OperationError, type SwitchboardError } from '@switchboard/core';
import { createClient } from '@switchboard/http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer, Responder } from './client-peer.js';
import { accounts, sendJson, sendProblem, startPeer } from './client-peer.js';

let peer: Peer | undefined;
const clients: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await peer?.close();
  peer = undefined;
});

async function setup(respond: Responder, options: Partial<Parameters<typeof createClient>[1]> = {}) {
  peer = await startPeer(respond);
  const client = createClient(accounts, { baseUrl: peer.url, breaker: false, ...options });
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

const record = { id: 'a1', name: 'Ada', createdAt: '2024-01-01T00:00:00.000Z' };
/** Back-off long enough that only an honoured Retry-After lets a retry fit in the budget. */
const slowBackoff = { baseMs: 60_000, maxMs: 60_000, jitter: 'none', maxRetryAfterMs: 10 } as const;

describe('client: retries', () => {
  it('retries an idempotent operation on 503, honouring Retry-After in seconds (capped)', async () => {
    const { peer, client } = await setup(
      (_request, response, index) =>
        index < 2 ? sendProblem(response, 503, { code: 'SB_OVERLOADED' }, { 'retry-after': '1' }) : sendJson(response, 200, record),
      { retry: slowBackoff, timeoutMs: 5_000 },
    );
    expect(await client.call('get', { id: 'a1' })).toEqual(record);
    expect(peer.received).toHaveLength(3);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const { peer, client } = await setup(
      (_request, response, index) =>
        index === 0
          ? sendProblem(response, 503, { code: 'SB_OVERLOADED' }, { 'retry-after': new Date(Date.now() - 1_000).toUTCString() })
          : sendJson(response, 200, record),
      { retry: slowBackoff, timeoutMs: 5_000 },
    );
    expect(await client.call('get', { id: 'a1' })).toEqual(record);
    expect(peer.received).toHaveLength(2);
  });

  it('retries on 408, 429, 502 and 504 and on retryable problems, within bounded attempts', async () => {
    const statuses = [408, 429, 502, 504];
    const { peer, client } = await setup(
      (_request, response, index) => {
        const status = statuses[index];
        if (status === undefined) sendJson(response, 200, record);
        else response.writeHead(status, { 'content-type': 'text/plain' }).end('busy');
      },
      { retry: { attempts: 5, baseMs: 1, maxMs: 2 } },
    );
    expect(await client.call('get', { id: 'a1' })).toEqual(record);
    expect(peer.received).toHaveLength(5);

    const retryable = await setup(
      (_request, response, index) =>
        index === 0 ? sendProblem(response, 409, { code: 'SB_IDEMPOTENCY_IN_PROGRESS', retryable: true }) : sendJson(response, 200, record),
      { retry: { baseMs: 1, maxMs: 1 } },
    );
    expect(await retryable.client.call('get', { id: 'a1' })).toEqual(record);
    expect(retryable.peer.received).toHaveLength(2);
    await retryable.peer.close();
  });

  it('stops after the configured attempts and throws the last answer', async () => {
    const { peer, client } = await setup(
      (_request, response) => sendProblem(response, 503, { code: 'SB_OVERLOADED' }, { 'retry-after': '0' }),
      {
        retry: { attempts: 3 },
      },
    );
    const error = (await rejection(client.call('get', { id: 'a1' }))) as SwitchboardError;
    expect(error.code).toBe('SB_OVERLOADED');
    expect(error.status).toBe(503);
    expect(error.retryAfterMs).toBe(0);
    expect(peer.received).toHaveLength(3);
  });

  it('does not retry a non-idempotent call that carries no Idempotency-Key', async () => {
    const { peer, client } = await setup((_request, response) => sendProblem(response, 503, { code: 'SB_OVERLOADED' }), {
      retry: { baseMs: 1, idempotencyKeys: false },
    });
    const error = (await rejection(client.call('save', { name: 'Ada' }))) as SwitchboardError;
    expect(error.code).toBe('SB_OVERLOADED');
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0]?.headers['idempotency-key']).toBeUndefined();
  });

  it('adds one Idempotency-Key per call and reuses it across attempts', async () => {
    const { peer, client } = await setup(
      (_request, response, index) =>
        index % 3 < 2 ? sendProblem(response, 503, { code: 'SB_OVERLOADED' }) : sendJson(response, 200, { id: 'a1', name: 'Ada' }),
      { retry: { baseMs: 1, maxMs: 1 } },
    );
    await client.call('save', { name: 'Ada' });
    await client.call('save', { name: 'Ada' });
    const keys = peer.received.map((request) => request.headers['idempotency-key']);
    expect(keys).toHaveLength(6);
    expect(typeof keys[0]).toBe('string');
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    expect(new Set(keys.slice(3)).size).toBe(1);
    expect(keys[3]).not.toBe(keys[0]);
  });

  it("reuses the caller's Idempotency-Key across attempts", async () => {
    const { peer, client } = await setup(
      (_request, response, index) =>
        index === 0 ? sendProblem(response, 502, { code: 'SB_BAD_GATEWAY' }) : sendJson(response, 200, { id: 'a1', name: 'A' }),
      { retry: { baseMs: 1, idempotencyKeys: false } },
    );
    await client.call('save', { name: 'A' }, { idempotencyKey: 'order-42' });
    expect(peer.received.map((request) => request.headers['idempotency-key'])).toEqual(['order-42', 'order-42']);
  });

  it('retries after the connection is reset', async () => {
    const { peer, client } = await setup(
      (_request, response, index) => {
        if (index === 0) response.socket?.destroy();
        else sendJson(response, 200, record);
      },
      { retry: { baseMs: 1, maxMs: 1 } },
    );
    expect(await client.call('get', { id: 'a1' })).toEqual(record);
    expect(peer.received).toHaveLength(2);
  });

  it('retries declared errors only when declared retryable', async () => {
    const { peer, client } = await setup(
      (request, response, index) => {
        const { name } = JSON.parse(request.body) as { name: string };
        if (name === 'taken') sendProblem(response, 409, { code: 'NameTaken', data: { existing: 'a0' } });
        else if (index < 2) sendProblem(response, 423, { code: 'Busy' });
        else sendJson(response, 200, { id: 'a1', name });
      },
      { retry: { baseMs: 1, maxMs: 1 } },
    );
    expect(await client.call('save', { name: 'free' })).toEqual({ id: 'a1', name: 'free' });
    expect(peer.received).toHaveLength(3);
    const error = await rejection(client.call('save', { name: 'taken' }));
    expect(error).toBeInstanceOf(OperationError);
    expect(peer.received).toHaveLength(4);
  });

  it('never waits past the deadline: a Retry-After beyond the budget ends the call with the last answer', async () => {
    const { peer, client } = await setup(
      (_request, response) => sendProblem(response, 503, { code: 'SB_OVERLOADED' }, { 'retry-after': '30' }),
      {
        timeoutMs: 2_000,
      },
    );
    const error = (await rejection(client.call('get', { id: 'a1' }))) as SwitchboardError;
    expect(error.code).toBe('SB_OVERLOADED');
    expect(error.retryAfterMs).toBe(30_000);
    expect(peer.received).toHaveLength(1);
  });

  it('can turn retries off per call', async () => {
    const { peer, client } = await setup((_request, response) => sendProblem(response, 503, { code: 'SB_OVERLOADED' }));
    const error = (await rejection(client.call('get', { id: 'a1' }, { retry: false }))) as SwitchboardError;
    expect(error.code).toBe('SB_OVERLOADED');
    expect(peer.received).toHaveLength(1);
  });
});
