import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpService } from '@switchboard/http';
import { createHttpService } from '@switchboard/http';
import { switchboardExpress } from '@switchboard/http/express';
import express from 'express';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mounted } from './server-cases.js';
import { coreCases } from './server-cases.js';
import { contract, createHandlers } from './server-fixture.js';

describe('@switchboard/http/express', () => {
  let server: Server;
  let service: HttpService;
  let mounted: Mounted;

  beforeAll(async () => {
    const { handlers, state } = createHandlers();
    service = createHttpService({ contract, handlers });
    const app = express();
    app.use('/api', switchboardExpress(service));
    app.get('/api/own', (_req, res) => {
      res.json({ own: true });
    });
    server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    mounted = { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, state };
  });
  afterAll(async () => {
    await service.close({ timeoutMs: 100 });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  coreCases(() => mounted);

  it('passes paths it does not own to the next middleware', async () => {
    const answer = await request(`${mounted.base}/own`);
    expect(answer.statusCode).toBe(200);
    expect(await answer.body.json()).toEqual({ own: true });
  });

  it('answers 500 SB_CONFIG_INVALID, not a hang, when a body parser consumed the body first', async () => {
    const app = express();
    app.use(express.json());
    app.use(switchboardExpress(service));
    const local = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    try {
      const answer = await request(`http://127.0.0.1:${(local.address() as AddressInfo).port}/ops/save`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"name":"x"}',
      });
      expect(answer.statusCode).toBe(500);
      expect(((await answer.body.json()) as { code: string }).code).toBe('SB_CONFIG_INVALID');
    } finally {
      local.closeAllConnections();
      await new Promise((resolve) => local.close(resolve));
    }
  });
});
