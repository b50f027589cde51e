import { SwitchboardError } from '@switchboard/core';
import type { BreakerStateChange } from '@switchboard/http';
import { CircuitBreaker, createClient } from '@switchboard/http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Peer } from './client-peer.js';
import { accounts, refusedUrl, sendJson, sendProblem, startPeer } from './client-peer.js';

function clock() {
  let now = 1_000_000;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function take(breaker: CircuitBreaker): number {
  const ticket = breaker.acquire();
  if (ticket === undefined) throw new Error('expected a ticket');
  return ticket;
}

describe('CircuitBreaker', () => {
  it('opens after consecutive failures, half-opens after the cool-down and closes on a successful probe', () => {
    const time = clock();
    const changes: BreakerStateChange[] = [];
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1_000, now: time.now, onStateChange: (c) => changes.push(c) });
    breaker.failure(take(breaker));
    breaker.failure(take(breaker));
    breaker.success(take(breaker));
    breaker.failure(take(breaker));
    breaker.failure(take(breaker));
    expect(breaker.state).toBe('closed');
    breaker.failure(take(breaker));
    expect(breaker.state).toBe('open');
    expect(breaker.acquire()).toBeUndefined();
    expect(breaker.retryAfterMs).toBe(1_000);
    time.advance(1_000);
    expect(breaker.state).toBe('half-open');
    const probe = take(breaker);
    expect(breaker.acquire()).toBeUndefined();
    breaker.success(probe);
    expect(breaker.state).toBe('closed');
    expect(changes.map((c) => `${c.from}>${c.to}`)).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('opens again when a probe fails, and a released probe frees its slot', () => {
    const time = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, halfOpenMaxCalls: 1, now: time.now });
    breaker.failure(take(breaker));
    time.advance(10);
    breaker.release(take(breaker));
    breaker.failure(take(breaker));
    expect(breaker.state).toBe('open');
  });

  it('needs successThreshold successful probes to close', () => {
    const time = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, halfOpenMaxCalls: 2, successThreshold: 2, now: time.now });
    breaker.failure(take(breaker));
    time.advance(10);
    const first = take(breaker);
    const second = take(breaker);
    expect(breaker.acquire()).toBeUndefined();
    breaker.success(first);
    expect(breaker.state).toBe('half-open');
    breaker.success(second);
    expect(breaker.state).toBe('closed');
  });

  it('opens on the failure ratio over the window', () => {
    const breaker = new CircuitBreaker({ failureThreshold: 100, failureRatio: 0.5, windowSize: 10, minimumCalls: 10 });
    for (let i = 0; i < 9; i++) {
      const ticket = take(breaker);
      if (i % 2 === 0) breaker.failure(ticket);
      else breaker.success(ticket);
    }
    expect(breaker.state).toBe('closed');
    breaker.failure(take(breaker));
    expect(breaker.state).toBe('open');
  });

  it('ignores outcomes of calls that started in an earlier state', () => {
    const time = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, now: time.now });
    const slow = take(breaker);
    breaker.failure(take(breaker));
    time.advance(10);
    expect(breaker.state).toBe('half-open');
    breaker.success(slow);
    expect(breaker.state).toBe('half-open');
  });

  it('rejects invalid options', () => {
    expect(() => new CircuitBreaker({ cooldownMs: 0 })).toThrow(RangeError);
  });
});

describe('client: circuit breaker', () => {
  let peer: Peer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });

  async function rejection(promise: Promise<unknown>): Promise<SwitchboardError> {
    try {
      await promise;
    } catch (error) {
      if (error instanceof SwitchboardError) return error;
      throw error;
    }
    throw new Error('expected the call to fail');
  }

  it('opens after repeated 5xx, fails fast without sending, then half-opens and closes after a success', async () => {
    let healthy = false;
    peer = await startPeer((_request, response) =>
      healthy ? sendJson(response, 200, { id: 'a1', name: 'Ada' }) : sendProblem(response, 503, { code: 'SB_OVERLOADED' }),
    );
    const time = clock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 5_000, now: time.now });
    const client = createClient(accounts, { baseUrl: peer.url, breaker, retry: false });
    try {
      for (let i = 0; i < 3; i++) expect((await rejection(client.call('save', { name: 'Ada' }))).code).toBe('SB_OVERLOADED');
      expect(client.breakerState()).toBe('open');
      const open = await rejection(client.call('save', { name: 'Ada' }));
      expect(open.code).toBe('SB_CIRCUIT_OPEN');
      expect(open.retryAfterMs).toBe(5_000);
      expect(peer.received).toHaveLength(3);

      time.advance(5_000);
      expect(client.breakerState()).toBe('half-open');
      healthy = true;
      expect(await client.call('save', { name: 'Ada' })).toEqual({ id: 'a1', name: 'Ada' });
      expect(client.breakerState()).toBe('closed');
      expect(peer.received).toHaveLength(4);
    } finally {
      await client.close();
    }
  });

  it('does not count answers of a healthy upstream (4xx, declared errors) as failures', async () => {
    peer = await startPeer((_request, response) => sendProblem(response, 409, { code: 'NameTaken', data: { existing: 'a0' } }));
    const client = createClient(accounts, { baseUrl: peer.url, breaker: { failureThreshold: 2 }, retry: false });
    try {
      for (let i = 0; i < 4; i++) await client.result('save', { name: 'Ada' });
      expect(client.breakerState()).toBe('closed');
      expect(peer.received).toHaveLength(4);
    } finally {
      await client.close();
    }
  });

  it('opens on an upstream that is down and then fails fast', async () => {
    const client = createClient(accounts, {
      baseUrl: await refusedUrl(),
      breaker: { failureThreshold: 3 },
      retry: { attempts: 5, baseMs: 1, maxMs: 1 },
    });
    try {
      const error = await rejection(client.call('get', { id: 'a1' }));
      // Three refused connections open the circuit; the fourth attempt is refused by the breaker.
      expect(error.code).toBe('SB_CIRCUIT_OPEN');
      expect(client.breakerState()).toBe('open');
      expect((await rejection(client.call('get', { id: 'a1' }))).code).toBe('SB_CIRCUIT_OPEN');
    } finally {
      await client.close();
    }
  });

  it('shares one breaker between clients of the same upstream', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1 });
    const url = await refusedUrl();
    const first = createClient(accounts, { baseUrl: url, breaker, retry: false });
    const second = createClient(accounts, { baseUrl: url, breaker, retry: false });
    try {
      expect((await rejection(first.call('get', { id: 'a1' }))).code).toBe('SB_UNAVAILABLE');
      expect((await rejection(second.call('get', { id: 'a1' }))).code).toBe('SB_CIRCUIT_OPEN');
      expect(second.breaker).toBe(breaker);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
