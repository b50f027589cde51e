import { parseTraceparent } from '@switchboard/core';
import type { CallPolicy } from '@switchboard/http';
import { CircuitBreaker, CutError, createClient, createJobsClient, createTransport, interceptors } from '@switchboard/http';
import { Agent, type Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from './client-peer.js';
import { accounts, sendJson, sendProblem, startPeer } from './client-peer.js';
import { analysis } from './jobs-fixture.js';

// The one transport of the three clients: undici's dispatcher composed with Switchboard's
// interceptors, tested against a plain node:http peer.

const peers: Peer[] = [];
const closers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closer of closers.splice(0)) await closer.close();
  for (const peer of peers.splice(0)) await peer.close();
});

async function peer(respond: Parameters<typeof startPeer>[0]): Promise<Peer> {
  const started = await startPeer(respond);
  peers.push(started);
  return started;
}

const record = { id: 'a1', name: 'Ada', createdAt: '2026-01-01T00:00:00.000Z' };

describe('authentication (token provider)', () => {
  it('asks for a token before every attempt and sends it as a bearer token, so a retry uses a fresh one', async () => {
    const upstream = await peer((_request, response, index) => {
      if (index === 0) sendProblem(response, 503, { code: 'SB_OVERLOADED' }, { 'retry-after': '0' });
      else sendJson(response, 200, record);
    });
    let issued = 0;
    const client = createClient(accounts, {
      baseUrl: upstream.url,
      auth: async () => `token-${++issued}`,
      retry: { attempts: 3, baseMs: 1, maxMs: 2 },
    });
    closers.push(client);
    await client.call('get', { id: 'a1' });
    expect(upstream.received.map((request) => request.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });

  it('sends no Authorization when the provider has no token, and fails with SB_UNAUTHORIZED, sending nothing, when it throws', async () => {
    const upstream = await peer((_request, response) => sendJson(response, 200, record));
    const anonymous = createClient(accounts, { baseUrl: upstream.url, auth: async () => undefined });
    closers.push(anonymous);
    await anonymous.call('get', { id: 'a1' });
    expect(upstream.received[0]?.headers.authorization).toBeUndefined();
    const broken = createClient(accounts, {
      baseUrl: upstream.url,
      auth: async () => {
        throw new Error('vault sealed');
      },
    });
    closers.push(broken);
    const error = await broken.call('get', { id: 'a1' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'SB_UNAUTHORIZED' });
    expect(upstream.received).toHaveLength(1);
  });

  it('authenticates the jobs client too', async () => {
    const upstream = await peer((request, response) => {
      response.writeHead(202, { 'content-type': 'application/json', location: '/jobs/AAAAAAAAAAAAAAAAAAAAAA' });
      response.end(
        JSON.stringify({ id: 'AAAAAAAAAAAAAAAAAAAAAA', operation: 'analyze', status: 'queued', auth: request.headers.authorization }),
      );
    });
    const jobs = createJobsClient(analysis, { baseUrl: upstream.url, auth: async () => 'job-token' });
    closers.push(jobs);
    await jobs.submit('analyze', { text: 'x' });
    expect(upstream.received[0]?.headers.authorization).toBe('Bearer job-token');
  });
});

describe('interceptors on a dispatcher of your own', () => {
  it('compose onto a plain undici Agent: tracing gives each request a span of the trace, deadline cuts it', async () => {
    const upstream = await peer((request, response) => {
      if (request.path === '/hang') return;
      sendJson(response, 200, { ok: true });
    });
    const agent = new Agent();
    closers.push(agent);
    const dispatcher = agent.compose(interceptors.tracing(), interceptors.deadline());
    const trace = { traceId: '0af7651916cd43dd8448eb211c80319c', flags: '01', continued: true };
    const policy: CallPolicy = { trace, deadline: Date.now() + 10_000 };
    const send = (path: string, switchboard: CallPolicy) =>
      dispatcher.request({ origin: upstream.url, path, method: 'GET', switchboard } as Dispatcher.RequestOptions);
    for (let i = 0; i < 2; i++) await (await send('/ok', policy)).body.dump();
    const spans = upstream.received.map((request) => parseTraceparent(request.headers.traceparent as string));
    expect(spans.map((span) => span?.traceId)).toEqual([trace.traceId, trace.traceId]);
    expect(spans[0]?.parentId).not.toBe(spans[1]?.parentId);
    const cut = await send('/hang', { deadline: Date.now() + 100 }).catch((error: unknown) => error);
    expect(cut).toBeInstanceOf(CutError);
    expect((cut as CutError).cut).toBe('deadline');
  });

  it('createTransport composes retry, breaker and classify: a verdict drives both', async () => {
    const upstream = await peer((_request, response, index) => {
      if (index < 2) sendProblem(response, 503, { code: 'SB_OVERLOADED' });
      else sendJson(response, 200, { ok: true });
    });
    const circuit = new CircuitBreaker({ failureThreshold: 10 });
    const transport = createTransport({ origin: upstream.url, breaker: circuit });
    closers.push(transport);
    const verdicts: number[] = [];
    const policy: CallPolicy = {
      retry: { attempts: 5, delay: () => 1 },
      classify: (result) => {
        const status = result.kind === 'response' ? result.status : 0;
        verdicts.push(status);
        return { retry: status === 503, health: status === 503 ? 'fault' : 'up' };
      },
    };
    const response = await transport.dispatcher.request({
      origin: upstream.url,
      path: '/x',
      method: 'GET',
      switchboard: policy,
    } as Dispatcher.RequestOptions);
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toEqual({ ok: true });
    expect(verdicts).toEqual([503, 503, 200]);
    expect(upstream.received).toHaveLength(3);
    expect(circuit.state).toBe('closed');
  });
});
