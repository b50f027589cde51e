import type { IncomingMessage } from 'node:http';
import { cloudEventToHttp, createCloudEvent, newMessageId } from '@switchboard/core';
import type { Authenticator, HttpService, Verification } from '@switchboard/http';
import { createHttpService } from '@switchboard/http';
import { fetchReceipt, type Messaging } from '@switchboard/messaging';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Engine, engines, serviceA, serviceB } from './harness.js';

/** Principals by API key: the test needs identities, not a token format. */
const KEYS: Record<string, { id: string; scopes: string[] }> = {
  'key-a': { id: 'service-a', scopes: [] },
  'key-c': { id: 'service-c', scopes: [] },
  'key-ops': { id: 'operator', scopes: ['receipts:read'] },
  'key-readonly': { id: 'reader', scopes: [] },
};
const apiKeys: Authenticator = {
  scheme: 'apiKey',
  verify(req: IncomingMessage): Verification {
    const key = req.headers['x-api-key'];
    if (key === undefined) return { failure: 'missing', detail: 'No API key' };
    const known = typeof key === 'string' ? KEYS[key] : undefined;
    return known === undefined ? { failure: 'invalid', detail: 'Unknown API key' } : { ...known, scheme: 'apiKey' };
  },
  challenge: (realm) => `ApiKey realm="${realm}"`,
};

describe.each(engines)('receipts readable by their sender only, on %s', (_name, factory) => {
  let engine: Engine;
  let a: Messaging;
  let b: Messaging;
  let http: HttpService;
  let url: string;

  beforeEach(async () => {
    engine = factory();
    a = engine.messaging({ service: 'service-a' });
    b = engine.messaging({ service: 'service-b' });
    b.handle(serviceB, 'name.submitted', () => {});
    b.on(serviceA, 'name.processed', () => {});
    await b.start();
    http = createHttpService({
      contract: serviceB,
      handlers: { save: () => ({ id: '1' }) },
      routes: b.routes({ receiptsReadScope: 'receipts:read', eventsScopes: [] }),
      auth: { authenticators: [apiKeys] },
    });
    url = (await http.listen()).url;
  });

  afterEach(async () => {
    await http.close();
    await engine.close();
  });

  async function post(key: string | undefined, event: ReturnType<typeof createCloudEvent>) {
    const wire = cloudEventToHttp(event);
    return fetch(`${url}/events`, {
      method: 'POST',
      headers: { ...wire.headers, ...(key === undefined ? {} : { 'x-api-key': key }) },
      body: wire.body,
    });
  }

  const read = (key: string | undefined, id: string, query = '') =>
    fetch(`${url}/receipts/${id}${query}`, { headers: key === undefined ? {} : { 'x-api-key': key } });

  it('keeps the authenticated sender of POST /events with the receipt; anyone else gets 404, a reader with the scope 200', async () => {
    const event = createCloudEvent({ type: 'service-b.name.submitted', source: 'service-a', data: { name: 'ada' } });
    expect((await post(undefined, event)).status).toBe(401);
    expect((await post('key-a', event)).status).toBe(204);

    const own = await read('key-a', event.id, '?source=service-a');
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({
      messageId: event.id,
      groups: [{ group: 'service-b', state: 'processed', sender: 'service-a' }],
    });

    const other = await read('key-c', event.id, '?source=service-a');
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND' });
    // The same answer as for a MessageId nobody ever sent: existence is not confirmed.
    const never = await read('key-c', newMessageId(), '?source=service-a');
    expect(never.status).toBe(404);
    expect((await read('key-readonly', event.id)).status).toBe(404);
    expect((await read(undefined, event.id)).status).toBe(401);

    const operator = await read('key-ops', event.id, '?source=service-a');
    expect(operator.status).toBe(200);
    expect(await operator.json()).toMatchObject({ groups: [{ sender: 'service-a' }] });
  });

  it('does not let a later delivery by another principal take the receipt over', async () => {
    const event = createCloudEvent({ type: 'service-b.name.submitted', source: 'service-a', data: { name: 'ada' } });
    expect((await post('key-a', event)).status).toBe(204);
    // The intruder replays the same event: a duplicate for the inbox, and the receipt stays service-a's.
    expect((await post('key-c', event)).status).toBe(204);
    expect((await read('key-c', event.id, '?source=service-a')).status).toBe(404);
    expect((await read('key-a', event.id, '?source=service-a')).status).toBe(200);
  });

  it('without ?source= answers each sender its own event, with no 409 naming another source', async () => {
    const id = newMessageId();
    const fromA = createCloudEvent({ id, type: 'service-b.name.submitted', source: 'service-a', data: { name: 'a' } });
    const fromC = createCloudEvent({ id, type: 'service-b.name.submitted', source: 'service-c', data: { name: 'c' } });
    expect((await post('key-a', fromA)).status).toBe(204);
    expect((await post('key-c', fromC)).status).toBe(204);
    expect(await (await read('key-a', id)).json()).toMatchObject({ source: 'service-a' });
    expect(await (await read('key-c', id)).json()).toMatchObject({ source: 'service-c' });
    // The operator sees both events, so it must say which.
    expect((await read('key-ops', id)).status).toBe(409);
  });

  it('shows a message that came through the broker unsigned (no known sender) only to the read scope, and through fetchReceipt with a token', async () => {
    const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'grace' });
    const operator = await fetchReceipt(url, messageId, {
      source: 'service-a',
      wait: { timeoutMs: 5000 },
      headers: { 'x-api-key': 'key-ops' },
    });
    expect(operator).toMatchObject({ messageId, groups: [{ group: 'service-b' }] });
    expect((await read('key-a', messageId, '?source=service-a')).status).toBe(404);
  });
});

describe.each(engines)('the receipt of a signed message from a broker, on %s', (_name, factory) => {
  const secret = 'a-secret-of-at-least-thirty-two-bytes!!';
  let engine: Engine;
  let http: HttpService;
  let url: string;

  beforeEach(async () => {
    engine = factory();
  });

  afterEach(async () => {
    await http.close();
    await engine.close();
  });

  it("names the verified source as its sender: the principal of that name reads it, another gets 404; with require: false an unsigned one's is the read scope's only", async () => {
    const signer = engine.messaging({ service: 'service-a', signing: { sign: { id: 'a-1', algorithm: 'hs256', secret } } });
    const unsigned = engine.messaging({ service: 'service-c' });
    const b = engine.messaging({
      service: 'service-b',
      signing: { verify: { keys: [{ id: 'a-1', algorithm: 'hs256', secret }], sources: { 'service-a': ['a-1'] } }, require: false },
    });
    b.handle(serviceB, 'name.submitted', () => {});
    await b.start();
    http = createHttpService({
      contract: serviceB,
      handlers: { save: () => ({ id: '1' }) },
      routes: b.routes({ receiptsReadScope: 'receipts:read' }),
      auth: { authenticators: [apiKeys] },
    });
    url = (await http.listen()).url;
    const signed = await signer.send(serviceB, 'name.submitted', { name: 'ada' });
    const plain = await unsigned.send(serviceB, 'name.submitted', { name: 'grace' });
    const asOperator = { 'x-api-key': 'key-ops' };
    const first = await fetchReceipt(url, signed.messageId, { source: 'service-a', wait: { timeoutMs: 5000 }, headers: asOperator });
    expect(first?.groups[0]).toMatchObject({ state: 'processed', sender: 'service-a' });
    const second = await fetchReceipt(url, plain.messageId, { source: 'service-c', wait: { timeoutMs: 5000 }, headers: asOperator });
    expect(second?.groups[0]?.state).toBe('processed');
    expect(second?.groups[0]?.sender).toBeUndefined();

    const get = (key: string, id: string, source: string) =>
      fetch(`${url}/receipts/${id}?source=${source}`, { headers: { 'x-api-key': key } });
    expect((await get('key-a', signed.messageId, 'service-a')).status).toBe(200);
    expect((await get('key-c', signed.messageId, 'service-a')).status).toBe(404);
    expect((await get('key-c', plain.messageId, 'service-c')).status).toBe(404);
  });
});
