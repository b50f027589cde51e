import { createTestbed, createVirtualNetwork, type Testbed, virtualHost } from '@switchboard/testing';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shop, shopHandlers } from './fixtures.js';

describe('HTTP without sockets', () => {
  let bed: Testbed;
  beforeAll(async () => {
    bed = await createTestbed({ services: { shop: { serves: shop, handlers: shopHandlers, jobs: true } } });
  });
  afterAll(() => bed.close());

  it('serves each service at http://<name>.test through in-memory pipes, never a port', async () => {
    expect(bed.url('shop')).toBe('http://shop.test');
    const before = bed.network.connections;
    const response = await request(`${bed.url('shop')}/ops/place`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'tea', quantity: 1 }),
      dispatcher: bed.network.dispatcher,
    });
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toMatchObject({ orderId: 'order-tea-1', via: 'http' });
    expect(bed.network.connections).toBeGreaterThan(0);
    expect(bed.network.connections).toBeGreaterThanOrEqual(before);
    expect(bed.service('shop').http.connections).toBe(0); // its own listener was never opened
  });

  it('answers the wire protocol: problems, 404, 405, idempotency', async () => {
    const send = (path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
      request(`${bed.url('shop')}${path}`, { dispatcher: bed.network.dispatcher, ...init } as Parameters<typeof request>[1]);
    const malformed = await send('/ops/place', { method: 'POST', body: '{"item":', headers: { 'content-type': 'application/json' } });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.headers['content-type']).toContain('application/problem+json');
    expect(await malformed.body.json()).toMatchObject({ code: 'SB_MALFORMED_JSON' });
    const unknown = await send('/ops/nothing', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(await unknown.body.json()).toMatchObject({ status: 404, code: 'SB_UNKNOWN_OPERATION' });
    const wrongMethod = await send('/ops/place');
    expect(wrongMethod.statusCode).toBe(405);
    await wrongMethod.body.dump();
    const keyed = {
      method: 'POST',
      body: '{"item":"jam","quantity":2}',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
    };
    const first = await (await send('/ops/place', keyed)).body.json();
    const again = await send('/ops/place', keyed);
    expect(await again.body.json()).toEqual(first);
    const other = await send('/ops/place', { ...keyed, body: '{"item":"oil","quantity":2}' });
    expect(await other.body.json()).toMatchObject({ status: 422, code: 'SB_IDEMPOTENCY_KEY_REUSED' });
  });

  it('streams: a job followed over server-sent events', async () => {
    const jobs = bed.jobs(shop, { wait: { transport: 'sse' } });
    const statuses: string[] = [];
    const result = await jobs.run('slow', { ms: 30 }, { onStatus: (s) => statuses.push(s.status) });
    expect(result).toEqual({ waited: 30 });
    expect(statuses).toContain('succeeded');
  });

  it('takes CloudEvents over HTTP (POST /events) into the same pipeline', async () => {
    const id = crypto.randomUUID();
    const response = await request(`${bed.url('shop')}/events`, {
      method: 'POST',
      dispatcher: bed.network.dispatcher,
      headers: {
        'content-type': 'application/json',
        'ce-specversion': '1.0',
        'ce-id': id,
        'ce-source': 'curl',
        'ce-type': 'shop.op.place',
      },
      body: JSON.stringify({ item: 'salt', quantity: 5 }),
    });
    expect(response.statusCode).toBe(204);
    await response.body.dump();
    expect((await bed.receipt(id, { source: 'curl' })).groups).toMatchObject([{ group: 'shop', state: 'processed' }]);
  });

  it('refuses a host nobody serves, as a closed port would', async () => {
    await expect(request('http://nobody.test/healthz', { dispatcher: bed.network.dispatcher })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    const outcome = await bed.client(shop).result('place', { item: 'tea', quantity: 1 });
    expect(outcome.ok).toBe(true);
  });
});

describe('the network on its own', () => {
  it('mounts any request listener, cuts it on unmount, and names hosts under .test', async () => {
    const network = createVirtualNetwork();
    try {
      expect(virtualHost('Service B')).toBe('service-b.test');
      expect(virtualHost('api.example.com')).toBe('api.example.com');
      const url = network.mount('echo', (req, res) => {
        res.setHeader('content-type', 'text/plain');
        req.pipe(res);
      });
      const body = 'x'.repeat(256 * 1024);
      const echoed = await request(url, { method: 'POST', body, dispatcher: network.dispatcher });
      expect(await echoed.body.text()).toBe(body);
      expect(() => network.mount('echo', () => undefined)).toThrow(/already served/);
      network.unmount('echo');
      await expect(request(url, { dispatcher: network.dispatcher })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await network.close();
    }
  });

  it('ends a response in progress when the service is unmounted', async () => {
    const network = createVirtualNetwork();
    try {
      const url = network.mount('hang', (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
      });
      const response = await request(url, { dispatcher: network.dispatcher });
      const reading = response.body.text();
      network.unmount('hang');
      await expect(reading).rejects.toThrow();
    } finally {
      await network.close();
    }
  });
});
