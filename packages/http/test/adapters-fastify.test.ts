import type { AddressInfo } from 'node:net';
import type { HttpService } from '@switchboard/http';
import { createHttpService, sendJson } from '@switchboard/http';
import { switchboardFastify } from '@switchboard/http/fastify';
import Fastify from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mounted } from './server-cases.js';
import { coreCases, post } from './server-cases.js';
import { contract, createHandlers, waitFor } from './server-fixture.js';

describe('@switchboard/http/fastify', () => {
  const app = Fastify();
  let service: HttpService;
  let mounted: Mounted;

  beforeAll(async () => {
    const { handlers, state } = createHandlers();
    service = createHttpService({
      contract,
      handlers,
      basePath: '/api',
      routes: [{ methods: ['GET'], path: '/jobs/', handle: (_req, res, ctx) => sendJson(res, 200, { path: ctx.path }) }],
    });
    app.get('/own', async () => ({ own: true }));
    app.post('/own-json', async (req) => ({ got: req.body }));
    await app.register(switchboardFastify, { service, prefix: '/api' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    mounted = { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api`, state };
  });
  afterAll(() => app.close());

  coreCases(() => mounted);

  it("mounts the service's extra routes", async () => {
    const answer = await request(`${mounted.base}/jobs/abc`);
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toEqual({ path: '/jobs/abc' });
  });

  it('leaves the rest of the application and its JSON parsing alone', async () => {
    const own = await request(`${mounted.base.replace('/api', '')}/own-json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(await own.body.json()).toEqual({ got: { a: 1 } });
  });

  it('drains the service when Fastify closes', async () => {
    const { handlers, state } = createHandlers();
    const local = createHttpService({ contract, handlers });
    const other = Fastify();
    await other.register(switchboardFastify, { service: local });
    await other.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(other.server.address() as AddressInfo).port}`;
    const inFlight = post(url, 'gate', '{}');
    await waitFor(() => state.waiting === 1);
    const closed = other.close();
    await waitFor(() => !local.ready);
    state.open();
    await closed;
    expect(local.ready).toBe(false);
    expect((await inFlight).status).toBe(200);
  });

  it('refuses a service whose basePath does not start with the prefix', async () => {
    const other = Fastify();
    const local = createHttpService({ contract, handlers: createHandlers().handlers });
    await expect(other.register(switchboardFastify, { service: local, prefix: '/api' }).ready()).rejects.toThrow(/basePath/);
    await local.close();
  });
});
