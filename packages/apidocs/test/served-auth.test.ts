import type { JsonObject } from '@switchboard/apidocs';
import { apiDocumentRoutes } from '@switchboard/apidocs';
import { defineContract, operation } from '@switchboard/core';
import type { Authenticator, HttpService } from '@switchboard/http';
import { bearerChallenge, createHttpService, mutualTlsAuthenticator } from '@switchboard/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openApiErrors } from './checks.js';

const contract = defineContract({
  name: 'ledger',
  operations: {
    post: operation({ input: z.object({ amount: z.number() }), output: z.object({ ok: z.boolean() }), scopes: ['ledger:write'] }),
    balance: operation({ input: z.object({}), output: z.object({ amount: z.number() }) }),
    audit: operation({ input: z.object({}), output: z.object({}) }),
  },
});

/** A bearer authenticator with one fixed token: the documents' part, not token checking, is under test. */
const fixedToken: Authenticator = {
  scheme: 'bearer',
  verify: (req) =>
    req.headers.authorization === 'Bearer t0k3n'
      ? { id: 'reader', scopes: [], scheme: 'bearer' }
      : { failure: req.headers.authorization === undefined ? 'missing' : 'invalid', detail: 'No such token' },
  challenge: bearerChallenge,
};

describe('the OpenAPI document of a service with authentication', () => {
  let service: HttpService;
  let url: string;

  beforeAll(async () => {
    service = createHttpService({
      contract,
      handlers: { post: () => ({ ok: true }), balance: () => ({ amount: 1 }), audit: () => ({}) },
      routes: apiDocumentRoutes(contract, { asyncapi: false }),
      auth: { authenticators: [fixedToken, mutualTlsAuthenticator()], scopes: { audit: ['ledger:audit'] } },
    });
    url = (await service.listen()).url;
  });

  afterAll(() => service.close());

  it('is served to authenticated callers only', async () => {
    const response = await fetch(`${url}/openapi.json`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="ledger", ClientCertificate realm="ledger"');
  });

  it("states the service's schemes, the scopes of each operation (contract and server), open probes, 401 and 403", async () => {
    const response = await fetch(`${url}/openapi.json`, { headers: { authorization: 'Bearer t0k3n' } });
    expect(response.status).toBe(200);
    const document = (await response.json()) as JsonObject & { components: JsonObject; paths: Record<string, Record<string, JsonObject>> };
    expect(await openApiErrors(document)).toEqual([]);
    expect(Object.keys(document.components.securitySchemes as JsonObject)).toEqual(['bearerAuth', 'mutualTLS']);
    expect(document.security).toEqual([{ bearerAuth: [] }, { mutualTLS: [] }]);
    expect(document.paths['/ops/post']?.post?.security).toEqual([{ bearerAuth: ['ledger:write'] }, { mutualTLS: ['ledger:write'] }]);
    expect(document.paths['/ops/audit']?.post?.security).toEqual([{ bearerAuth: ['ledger:audit'] }, { mutualTLS: ['ledger:audit'] }]);
    expect(document.paths['/ops/balance']?.post?.security).toBeUndefined();
    expect(document.paths['/healthz']?.get?.security).toEqual([]);
    const responses = document.paths['/ops/balance']?.post?.responses as JsonObject;
    expect(Object.keys(responses)).toEqual(expect.arrayContaining(['401', '403']));
  });

  it('can be served publicly on request', async () => {
    const open = createHttpService({
      contract,
      handlers: { post: () => ({ ok: true }), balance: () => ({ amount: 1 }), audit: () => ({}) },
      routes: apiDocumentRoutes(contract, { asyncapi: false, public: true }),
      auth: { authenticators: [fixedToken] },
    });
    const there = await open.listen();
    try {
      const response = await fetch(`${there.url}/openapi.json`);
      expect(response.status).toBe(200);
      const document = (await response.json()) as { components: { securitySchemes: JsonObject } };
      expect(Object.keys(document.components.securitySchemes)).toEqual(['bearerAuth']);
    } finally {
      await open.close();
    }
  });
});
