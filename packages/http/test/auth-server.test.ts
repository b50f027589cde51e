import type { IncomingMessage } from 'node:http';
import { defineContract, operation } from '@switchboard/core';
import type { Authenticator, HttpRoute, Verification } from '@switchboard/http';
import { bearerChallenge, createAuthGate, createHttpService, sendJson } from '@switchboard/http';
import { switchboardExpress } from '@switchboard/http/express';
import { switchboardFastify } from '@switchboard/http/fastify';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';

const contract = defineContract({
  name: 'desk',
  operations: {
    read: operation({ input: z.object({}), output: z.object({ principal: z.string() }) }),
    write: operation({ input: z.object({}), output: z.object({ ok: z.boolean() }), scopes: ['desk:write'] }),
  },
});
const handlers = {
  read: (_input: unknown, ctx: { principal?: string }) => ({ principal: ctx.principal ?? '' }),
  write: () => ({ ok: true }),
};

/** A custom authenticator (an API key header), asynchronous on purpose. */
function apiKeys(keys: Record<string, { id: string; scopes: string[] }>): Authenticator & { calls: number } {
  const authenticator = {
    scheme: 'apiKey',
    calls: 0,
    async verify(req: IncomingMessage): Promise<Verification> {
      authenticator.calls++;
      const key = req.headers['x-api-key'];
      if (key === undefined) return { failure: 'missing', detail: 'No API key' };
      const known = typeof key === 'string' ? keys[key] : undefined;
      return known === undefined ? { failure: 'invalid', detail: 'Unknown API key' } : { ...known, scheme: 'apiKey' };
    },
    challenge: (realm: string) => `ApiKey realm="${realm}"`,
  };
  return authenticator;
}

const whoRoute: HttpRoute = {
  methods: ['GET'],
  path: '/who',
  handle: (_req, res, context) => sendJson(res, 200, { principal: context.principal, scopes: context.authenticated?.scopes ?? [] }),
};
const adminRoute: HttpRoute = { methods: ['GET'], path: '/admin', scopes: ['desk:admin'], handle: (_req, res) => sendJson(res, 200, {}) };
const openRoute: HttpRoute = { methods: ['GET'], path: '/open', public: true, handle: (_req, res) => sendJson(res, 200, { open: true }) };

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closing.splice(0)) await close();
});

async function start(options: Parameters<typeof createHttpService<typeof contract>>[0]) {
  const service = createHttpService(options);
  const listening = await service.listen();
  closing.push(() => service.close());
  return { service, url: listening.url };
}

async function send(url: string, method: string, headers: Record<string, string> = {}) {
  const response = await request(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(method === 'POST' ? { body: '{}' } : {}),
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Record<string, unknown> };
}

describe('service authentication with a pluggable authenticator', () => {
  const keys = { k1: { id: 'reader', scopes: ['desk:read'] }, k2: { id: 'writer', scopes: ['desk:write', 'desk:admin'] } };

  it('authenticates operations and extra routes; scopes from the contract and the route; public routes and probes stay open', async () => {
    const { url } = await start({
      contract,
      handlers,
      routes: [whoRoute, adminRoute, openRoute],
      auth: { authenticators: [apiKeys(keys)] },
    });
    expect((await send(`${url}/ops/read`, 'POST', { 'x-api-key': 'k1' })).body).toEqual({ principal: 'reader' });
    expect((await send(`${url}/ops/write`, 'POST', { 'x-api-key': 'k1' })).status).toBe(403);
    expect((await send(`${url}/ops/write`, 'POST', { 'x-api-key': 'k2' })).status).toBe(200);
    expect((await send(`${url}/who`, 'GET', { 'x-api-key': 'k1' })).body).toEqual({ principal: 'reader', scopes: ['desk:read'] });
    const denied = await send(`${url}/admin`, 'GET', { 'x-api-key': 'k1' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ code: 'SB_FORBIDDEN', detail: 'This request needs the scope desk:admin' });
    expect((await send(`${url}/admin`, 'GET', { 'x-api-key': 'k2' })).status).toBe(200);
    expect((await send(`${url}/open`, 'GET')).body).toEqual({ open: true });
    const anonymous = await send(`${url}/who`, 'GET');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBe('ApiKey realm="desk"');
    const wrong = await send(`${url}/ops/read`, 'POST', { 'x-api-key': 'nope' });
    expect(wrong.body).toMatchObject({ code: 'SB_UNAUTHORIZED', detail: 'Unknown API key' });
    // A 405 on a route is only said to an authenticated caller.
    expect((await send(`${url}/who`, 'DELETE')).status).toBe(401);
    expect((await send(`${url}/who`, 'DELETE', { 'x-api-key': 'k1' })).status).toBe(405);
  });

  it('lets auth.scopes override the contract, and refuses scopes for an operation it does not have', async () => {
    const { url } = await start({
      contract,
      handlers,
      auth: { authenticators: [apiKeys(keys)], scopes: { write: [], read: ['desk:read'] } },
    });
    expect((await send(`${url}/ops/write`, 'POST', { 'x-api-key': 'k1' })).status).toBe(200);
    expect((await send(`${url}/ops/read`, 'POST', { 'x-api-key': 'k2' })).status).toBe(403);
    expect(() => createHttpService({ contract, handlers, auth: { authenticators: [apiKeys(keys)], scopes: { erase: ['x'] } } })).toThrow(
      /names no operation erase/,
    );
    expect(() => createHttpService({ contract, handlers, auth: { authenticators: [] } })).toThrow(/at least one authenticator/);
  });

  it('tries authenticators in order: a missing credential passes to the next, an invalid one ends the search', async () => {
    const first = apiKeys({ k1: { id: 'from-key', scopes: [] } });
    const bearer: Authenticator = {
      scheme: 'bearer',
      verify: (req) =>
        req.headers.authorization === 'Bearer good'
          ? { id: 'from-bearer', scopes: [], scheme: 'bearer' }
          : req.headers.authorization === undefined
            ? { failure: 'missing', detail: 'No bearer token' }
            : { failure: 'invalid', detail: 'Bad token' },
      challenge: bearerChallenge,
    };
    const { url } = await start({ contract, handlers, auth: { authenticators: [first, bearer] } });
    expect((await send(`${url}/ops/read`, 'POST', { authorization: 'Bearer good' })).body).toEqual({ principal: 'from-bearer' });
    expect((await send(`${url}/ops/read`, 'POST', { 'x-api-key': 'k1', authorization: 'Bearer good' })).body).toEqual({
      principal: 'from-key',
    });
    const none = await send(`${url}/ops/read`, 'POST');
    expect(none.headers['www-authenticate']).toBe('ApiKey realm="desk", Bearer realm="desk"');
    expect(none.body.detail).toBe('Send credentials: apiKey or a bearer token');
    const bad = await send(`${url}/ops/read`, 'POST', { authorization: 'Bearer bad' });
    expect(bad.headers['www-authenticate']).toBe(
      'ApiKey realm="desk", Bearer realm="desk", error="invalid_token", error_description="Bad token"',
    );
  });

  it('answers 503 when an authenticator throws, and serves a surface of its own through AuthGate.guard', async () => {
    const broken: Authenticator = {
      scheme: 'bearer',
      verify: () => {
        throw new Error('secret internals');
      },
      challenge: bearerChallenge,
    };
    const { url } = await start({ contract, handlers, auth: { authenticators: [broken] } });
    const answer = await send(`${url}/ops/read`, 'POST');
    expect(answer.status).toBe(503);
    expect(JSON.stringify(answer.body)).not.toContain('secret');
    const gate = createAuthGate({ realm: 'dashboard', authenticators: [apiKeys(keys)] });
    const { createServer } = await import('node:http');
    const server = createServer(async (req, res) => {
      const principal = await gate.guard(req, res, ['desk:admin']);
      if (principal !== undefined) sendJson(res, 200, { principal: principal.id });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closing.push(() => new Promise((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    expect((await send(base, 'GET', { 'x-api-key': 'k2' })).body).toEqual({ principal: 'writer' });
    expect((await send(base, 'GET', { 'x-api-key': 'k1' })).status).toBe(403);
    expect((await send(base, 'GET')).status).toBe(401);
  });
});

describe('authentication when mounted in Fastify and Express', () => {
  const keys = { k1: { id: 'reader', scopes: ['desk:read'] } };

  it('guards the mounted service the same way, and leaves the framework own routes alone', async () => {
    const service = createHttpService({
      contract,
      handlers,
      basePath: '/api',
      routes: [whoRoute],
      auth: { authenticators: [apiKeys(keys)] },
    });
    const fastify = Fastify();
    fastify.get('/own', async () => ({ own: true }));
    await fastify.register(switchboardFastify, { service, prefix: '/api' });
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    closing.push(() => fastify.close());
    const app = express();
    app.get('/own', (_req, res) => {
      res.json({ own: true });
    });
    app.use(switchboardExpress(service));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    closing.push(() => new Promise((resolve) => server.close(() => resolve())));
    for (const port of [(fastify.server.address() as { port: number }).port, (server.address() as { port: number }).port]) {
      const base = `http://127.0.0.1:${port}`;
      expect((await send(`${base}/api/ops/read`, 'POST')).status).toBe(401);
      expect((await send(`${base}/api/ops/read`, 'POST', { 'x-api-key': 'k1' })).body).toEqual({ principal: 'reader' });
      expect((await send(`${base}/api/who`, 'GET', { 'x-api-key': 'k1' })).body).toEqual({ principal: 'reader', scopes: ['desk:read'] });
      expect((await send(`${base}/api/ops/write`, 'POST', { 'x-api-key': 'k1' })).status).toBe(403);
      expect((await send(`${base}/own`, 'GET')).body).toEqual({ own: true });
    }
  });
});

describe('a service listening off loopback', () => {
  async function warningsOf(auth: 'none' | undefined): Promise<string[]> {
    const seen: string[] = [];
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code === 'SWITCHBOARD_NO_AUTH') seen.push(warning.message);
    };
    process.on('warning', onWarning);
    try {
      const service = createHttpService({ contract, handlers, ...(auth === undefined ? {} : { auth }) });
      await service.listen({ host: '0.0.0.0' });
      await service.close();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    return seen;
  }

  it("warns when it has no authentication, and not with an explicit auth: 'none'", async () => {
    const warned = await warningsOf(undefined);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/desk listens on 0\.0\.0\.0 with no authentication/);
    expect(await warningsOf('none')).toEqual([]);
  });
});
