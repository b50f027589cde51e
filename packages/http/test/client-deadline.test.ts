import { SwitchboardError } from '@switchboard/core';
import { createClient } from '@switchboard/http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer, Responder } from './client-peer.js';
import { accounts, refusedUrl, sendJson, startPeer } from './client-peer.js';

let peer: Peer | undefined;
const clients: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await peer?.close();
  peer = undefined;
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

async function setup(respond: Responder, options: Partial<Parameters<typeof createClient>[1]> = {}) {
  peer = await startPeer(respond);
  const client = createClient(accounts, { baseUrl: peer.url, breaker: false, ...options });
  clients.push(client);
  return { peer, client };
}

async function rejection(promise: Promise<unknown>): Promise<SwitchboardError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SwitchboardError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

const hang: Responder = () => {};
const record = { id: 'a1', name: 'Ada', createdAt: '2024-01-01T00:00:00.000Z' };

describe('client: deadlines', () => {
  it('fails a call to a hanging server with SB_DEADLINE_EXCEEDED and cancels the request', async () => {
    const { peer, client } = await setup(hang);
    // Long enough for the request to reach the peer on a loaded machine before the deadline ends the call.
    const error = await rejection(client.call('get', { id: 'a1' }, { timeoutMs: 1000 }));
    expect(error.code).toBe('SB_DEADLINE_EXCEEDED');
    expect(peer.received).toHaveLength(1);
    expect(Number(peer.received[0]?.headers['switchboard-timeout-ms'])).toBeLessThanOrEqual(1000);
    await peer.received[0]?.abandoned;
  });

  it('ends at an absolute deadline earlier than the timeout', async () => {
    const { peer, client } = await setup(hang, { timeoutMs: 60_000 });
    const error = await rejection(client.call('get', { id: 'a1' }, { deadline: Date.now() + 1000 }));
    expect(error.code).toBe('SB_DEADLINE_EXCEEDED');
    expect(peer.received).toHaveLength(1);
    expect(Number(peer.received[0]?.headers['switchboard-timeout-ms'])).toBeLessThanOrEqual(1000);
  });

  it('sends nothing when the deadline has already passed', async () => {
    const { peer, client } = await setup(hang);
    const error = await rejection(client.call('get', { id: 'a1' }, { context: { deadline: Date.now() - 1 } }));
    expect(error.code).toBe('SB_DEADLINE_EXCEEDED');
    expect(peer.received).toHaveLength(0);
  });

  it('retries an attempt that ran past attemptTimeoutMs while the call budget lasts', async () => {
    const { peer, client } = await setup((_request, response, index) => (index === 0 ? undefined : sendJson(response, 200, record)), {
      attemptTimeoutMs: 60,
      timeoutMs: 5_000,
      retry: { baseMs: 1, maxMs: 1 },
    });
    expect(await client.call('get', { id: 'a1' })).toEqual(record);
    expect(peer.received).toHaveLength(2);
    expect(Number(peer.received[0]?.headers['switchboard-timeout-ms'])).toBeLessThanOrEqual(60);
    await peer.received[0]?.abandoned;
  });
});

describe('client: abort', () => {
  it('rejects with SB_ABORTED and cancels the request when the signal fires', async () => {
    let arrived: () => void = () => {};
    const received = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const { peer, client } = await setup(() => arrived());
    const controller = new AbortController();
    const call = client.call('get', { id: 'a1' }, { signal: controller.signal });
    await received;
    controller.abort(new Error('user left'));
    const error = await rejection(call);
    expect(error.code).toBe('SB_ABORTED');
    expect((error.cause as Error).message).toBe('user left');
    await peer.received[0]?.abandoned;
  });

  it('sends nothing for an already aborted signal', async () => {
    const { peer, client } = await setup(hang);
    const error = await rejection(client.call('get', { id: 'a1' }, { signal: AbortSignal.abort() }));
    expect(error.code).toBe('SB_ABORTED');
    expect(peer.received).toHaveLength(0);
  });

  it('stops waiting to retry when aborted', async () => {
    const controller = new AbortController();
    const { peer, client } = await setup(
      (_request, response) => {
        response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        response.end(JSON.stringify({ code: 'SB_OVERLOADED', status: 503 }));
        setImmediate(() => controller.abort());
      },
      { retry: { maxRetryAfterMs: 60_000 }, timeoutMs: 60_000 },
    );
    const error = await rejection(client.call('get', { id: 'a1' }, { signal: controller.signal }));
    expect(error.code).toBe('SB_ABORTED');
    expect(peer.received).toHaveLength(1);
  });
});

describe('client: upstream down', () => {
  it('fails with SB_UNAVAILABLE carrying the connection error', async () => {
    const client = createClient(accounts, { baseUrl: await refusedUrl(), breaker: false, retry: false });
    clients.push(client);
    const error = await rejection(client.call('get', { id: 'a1' }));
    expect(error.code).toBe('SB_UNAVAILABLE');
    expect(error.status).toBe(503);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('retries an idempotent call a bounded number of times, then gives up', async () => {
    const client = createClient(accounts, { baseUrl: await refusedUrl(), breaker: false, retry: { attempts: 3, baseMs: 1, maxMs: 2 } });
    clients.push(client);
    const error = await rejection(client.call('get', { id: 'a1' }));
    expect(error.code).toBe('SB_UNAVAILABLE');
  });

  it('wakes calls waiting to retry when the client closes', async () => {
    const { client } = await setup((_request, response) => {
      response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      response.end(JSON.stringify({ code: 'SB_OVERLOADED', status: 503 }));
      setImmediate(() => void client.close());
    });
    const error = await rejection(client.call('get', { id: 'a1' }));
    expect(error.code).toBe('SB_CLOSED');
  });
});
