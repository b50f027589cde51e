import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineContract, operation } from '@switchboard/core';
import type { HttpService, Listening } from '@switchboard/http';
import { cachedToken, createClient, createHttpService, enableJobs } from '@switchboard/http';
import { jwtAuthenticator } from '@switchboard/jwt';
import { createMemoryJobStore } from '@switchboard/memory';
import fc from 'fast-check';
import type { CryptoKey, JWK, JWTPayload } from 'jose';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

const ISSUER = 'https://issuer.test/';
const AUDIENCE = 'names-service';

const names = defineContract({
  name: 'names',
  operations: {
    save: operation({ input: z.object({ name: z.string() }), output: z.object({ by: z.string() }), scopes: ['names:write'] }),
    whoami: operation({ input: z.object({}), output: z.object({ principal: z.string().optional() }) }),
    slow: operation({ input: z.object({}), output: z.object({ by: z.string() }), mode: 'async' }),
  },
});

/** A JWKS served over real HTTP, as an identity provider serves it; counts its fetches. */
class JwksServer {
  readonly server: Server;
  keys: JWK[] = [];
  fetches = 0;
  down = false;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      this.fetches++;
      if (this.down || req.url !== '/.well-known/jwks.json') {
        res.writeHead(this.down ? 500 : 404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }
}

let jwks: JwksServer;
let signingKey: CryptoKey;
let otherKey: CryptoKey;
let service: HttpService;
let listening: Listening;
let closeJobs: () => Promise<void>;

async function token(
  claims: JWTPayload = {},
  options: { key?: CryptoKey; kid?: string; exp?: number | string; iss?: string; aud?: string } = {},
) {
  const jwt = new SignJWT({ scope: 'names:write', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1' })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setSubject((claims.sub as string | undefined) ?? 'service-a')
    .setIssuedAt();
  if (options.exp !== undefined) jwt.setExpirationTime(options.exp);
  else jwt.setExpirationTime('5m');
  return jwt.sign(options.key ?? signingKey);
}

async function post(path: string, bearer: string | undefined, body: unknown = { name: 'Ada' }) {
  const response = await request(`${listening.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }) },
    body: JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) };
}

beforeAll(async () => {
  jwks = new JwksServer();
  await jwks.start();
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  jwks.keys = [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }];
  const jobs = enableJobs(names, { store: createMemoryJobStore() });
  service = createHttpService({
    contract: names,
    handlers: {
      save: (_input, ctx) => ({ by: ctx.principal ?? 'nobody' }),
      whoami: (_input, ctx) => (ctx.principal === undefined ? {} : { principal: ctx.principal }),
      slow: (_input, ctx) => ({ by: ctx.principal ?? 'nobody' }),
    },
    routes: jobs.routes,
    interceptors: jobs.interceptors,
    auth: {
      authenticators: [jwtAuthenticator({ jwks: jwks.url, issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 30 })],
    },
  });
  jobs.start(service);
  closeJobs = () => jobs.close();
  listening = await service.listen();
});

afterAll(async () => {
  await closeJobs();
  await service.close();
  await new Promise((resolve) => jwks.server.close(resolve));
});

describe('JWT bearer authentication against a JWKS served over HTTP', () => {
  it('accepts a valid token: the principal is its subject, and the JWKS is fetched once for many calls', async () => {
    const before = jwks.fetches;
    const good = await token({ sub: 'service-a' });
    for (let i = 0; i < 3; i++) {
      const answer = await post('/ops/save', good);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ by: 'service-a' });
    }
    expect(jwks.fetches - before).toBeLessThanOrEqual(1);
  });

  it('answers 401 SB_UNAUTHORIZED with a Bearer challenge without a token', async () => {
    const answer = await post('/ops/whoami', undefined, {});
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="names"');
    expect(answer.body).toMatchObject({ code: 'SB_UNAUTHORIZED', status: 401 });
  });

  const refused: Array<[string, () => Promise<string>, RegExp]> = [
    ['a wrong issuer', () => token({}, { iss: 'https://evil.test/' }), /issuer/],
    ['a wrong audience', () => token({}, { aud: 'another-service' }), /audience/],
    ['an expired token (past the clock skew)', () => token({}, { exp: Math.floor(Date.now() / 1000) - 120 }), /expired/],
    ['a bad signature (another key under the published kid)', () => token({}, { key: otherKey }), /signature/],
    ['a key the issuer does not publish', () => token({}, { kid: 'unknown' }), /key/],
    [
      'alg none',
      async () =>
        new UnsecuredJWT({ scope: 'names:write' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('x').setExpirationTime('5m').encode(),
      /algorithm/,
    ],
    [
      'HS256 signed with the public key as a secret (algorithm confusion)',
      async () =>
        new SignJWT({ scope: 'names:write' })
          .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject('x')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0]))),
      /algorithm/,
    ],
    ['not a JWT at all', async () => 'abc.def.ghi', /malformed/],
  ];
  for (const [what, make, detail] of refused) {
    it(`refuses ${what}: 401 with error="invalid_token"`, async () => {
      const answer = await post('/ops/whoami', await make(), {});
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer realm="names", error="invalid_token", error_description="/);
      expect(answer.body).toMatchObject({ code: 'SB_UNAUTHORIZED' });
      expect(answer.body.detail).toMatch(detail);
    });
  }

  it('accepts a token expired within the clock skew', async () => {
    const answer = await post('/ops/whoami', await token({ sub: 'skewed' }, { exp: Math.floor(Date.now() / 1000) - 5 }), {});
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ principal: 'skewed' });
  });

  it('answers 403 SB_FORBIDDEN with insufficient_scope when the token lacks the operation scope', async () => {
    const answer = await post('/ops/save', await token({ scope: 'names:read' }));
    expect(answer.status).toBe(403);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="names", error="insufficient_scope", scope="names:write"');
    expect(answer.body).toMatchObject({ code: 'SB_FORBIDDEN' });
    expect(answer.body.detail).toContain('names:write');
    // The same token may call an operation that needs no scope.
    expect((await post('/ops/whoami', await token({ scope: 'names:read' }), {})).status).toBe(200);
  });

  it('reads scopes from scp as well', async () => {
    const answer = await post('/ops/save', await token({ scope: undefined, scp: ['names:write'] }));
    expect(answer.status).toBe(200);
  });

  it('keeps /healthz and /readyz open, and hides which operations exist from the unauthenticated', async () => {
    expect((await request(`${listening.url}/healthz`)).statusCode).toBe(200);
    const unknown = await post('/ops/nope', undefined, {});
    expect(unknown.status).toBe(401);
    const known = await post('/ops/nope', await token(), {});
    expect(known.status).toBe(404);
  });

  it('scopes jobs to their submitter: another principal gets 404, the submitter the result', async () => {
    const submitted = await post('/ops/slow', await token({ sub: 'owner' }), {});
    expect(submitted.status).toBe(202);
    const monitor = submitted.headers.location as string;
    const asOther = await request(`${listening.url}${monitor}`, {
      headers: { authorization: `Bearer ${await token({ sub: 'intruder' })}` },
    });
    expect(asOther.statusCode).toBe(404);
    await asOther.body.dump();
    const anonymous = await request(`${listening.url}${monitor}`);
    expect(anonymous.statusCode).toBe(401);
    await anonymous.body.dump();
    const asOwner = await request(`${listening.url}${monitor}?wait=5`, {
      headers: { authorization: `Bearer ${await token({ sub: 'owner' })}` },
    });
    expect([200, 303]).toContain(asOwner.statusCode);
    await asOwner.body.dump();
  });

  it('answers any Authorization header with 401 problem+json and a challenge, never a 5xx (property)', async () => {
    const good = await token();
    const [head, body] = good.split('.') as [string, string];
    const printable = fc.stringMatching(/^[\x21-\x7e]{0,300}$/);
    const header = fc.oneof(
      printable,
      printable.map((t) => `Bearer ${t}`),
      printable.map((t) => `bearer  ${t} `),
      fc.tuple(printable, printable).map(([a, b]) => `Bearer ${head}.${body}${a}.${b}`),
      fc.tuple(printable, printable, printable).map(([a, b, c]) => `Bearer ${a}.${b}.${c}`),
    );
    await fc.assert(
      fc.asyncProperty(header, async (authorization) => {
        const response = await request(`${listening.url}/ops/whoami`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization },
          body: '{}',
        });
        const text = await response.body.text();
        // Another scheme, a malformed bearer value, a forged or truncated token: always 401.
        expect(response.statusCode).toBe(401);
        expect(response.headers['content-type']).toBe('application/problem+json');
        expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer realm="names"/);
        expect(JSON.parse(text)).toMatchObject({ code: 'SB_UNAUTHORIZED', status: 401 });
      }),
      { numRuns: 150, seed: 1212 },
    );
  });

  it('answers 503 SB_UNAVAILABLE (not 401) when the JWKS cannot be fetched', async () => {
    const unreachable = createHttpService({
      contract: names,
      handlers: { save: () => ({ by: '' }), whoami: () => ({}), slow: () => ({ by: '' }) },
      auth: { authenticators: [jwtAuthenticator({ jwks: 'http://127.0.0.1:1/jwks.json', issuer: ISSUER, audience: AUDIENCE })] },
    });
    const there = await unreachable.listen();
    try {
      const response = await request(`${there.url}/ops/whoami`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}` },
        body: '{}',
      });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(await response.body.json()).toMatchObject({ code: 'SB_UNAVAILABLE' });
    } finally {
      await unreachable.close();
    }
  });
});

describe('the typed client with a cached token provider', () => {
  it('fetches a token once for many calls, and again after the server refused it', async () => {
    let fetched = 0;
    let next: () => Promise<string> = () => token({ sub: 'client-a' });
    const provider = cachedToken(() => {
      fetched++;
      return next();
    });
    const client = createClient(names, { baseUrl: listening.url, auth: provider, retry: false });
    try {
      for (let i = 0; i < 4; i++) expect(await client.call('save', { name: 'Ada' })).toEqual({ by: 'client-a' });
      expect(fetched).toBe(1);
      // The issuer rotates: the cached token is refused once, then a fresh one is fetched.
      provider.invalidate();
      next = () => token({ sub: 'client-a' }, { iss: 'https://old-issuer.test/' });
      const refused = await client.result('save', { name: 'Ada' });
      expect(refused.ok).toBe(false);
      expect(refused.ok ? undefined : refused.error.code).toBe('SB_UNAUTHORIZED');
      next = () => token({ sub: 'client-b' });
      expect(await client.call('save', { name: 'Ada' })).toEqual({ by: 'client-b' });
      expect(fetched).toBe(3);
    } finally {
      await client.close();
    }
  });
});
