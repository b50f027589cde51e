import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineContract, operation } from '@switchboard/core';
import type { HttpService, Listening } from '@switchboard/http';
import { createClient, createHttpService, mutualTlsAuthenticator } from '@switchboard/http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

const contract = defineContract({
  name: 'vault',
  operations: {
    whoami: operation({ input: z.object({}), output: z.object({ principal: z.string() }) }),
    open: operation({ input: z.object({}), output: z.object({ opened: z.boolean() }), scopes: ['vault:open'] }),
  },
});

/** Certificates made with the openssl CLI for this run: a CA, the server, a client it signed, and a client of another CA. */
interface Pki {
  readonly dir: string;
  readonly ca: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  readonly rogueKey: string;
  readonly rogueCert: string;
}

function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'sb-mtls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, subject: string) =>
    openssl('req', '-x509', ...ec, '-keyout', at(`${name}.key`), '-out', at(`${name}.crt`), '-days', '2', '-subj', subject);
  const leaf = (name: string, caName: string, subject: string, extensions: string) => {
    openssl('req', ...ec, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', subject);
    writeFileSync(at(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at(`${caName}.crt`),
      '-CAkey',
      at(`${caName}.key`),
      '-CAcreateserial',
      '-out',
      at(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      at(`${name}.ext`),
    );
  };
  ca('ca', '/O=Switchboard Test/CN=Test CA');
  ca('rogue-ca', '/O=Elsewhere/CN=Rogue CA');
  leaf('server', 'ca', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', '/O=Acme/CN=service-a', 'extendedKeyUsage=clientAuth\n');
  leaf('rogue', 'rogue-ca', '/O=Acme/CN=service-a', 'extendedKeyUsage=clientAuth\n');
  const read = (name: string) => readFileSync(at(name), 'utf8');
  return {
    dir,
    ca: read('ca.crt'),
    serverKey: read('server.key'),
    serverCert: read('server.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    rogueKey: read('rogue.key'),
    rogueCert: read('rogue.crt'),
  };
}

let pki: Pki;
let service: HttpService;
let listening: Listening;
const agents: Agent[] = [];

function agent(identity?: { key: string; cert: string }): Agent {
  const made = new Agent({ connect: { ca: pki.ca, ...(identity === undefined ? {} : identity) } });
  agents.push(made);
  return made;
}

async function call(path: string, dispatcher: Agent) {
  const response = await request(`${listening.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
    dispatcher,
  });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  pki = makePki();
  service = createHttpService({
    contract,
    handlers: {
      whoami: (_input, ctx) => ({ principal: ctx.principal ?? '' }),
      open: () => ({ opened: true }),
    },
    auth: { authenticators: [mutualTlsAuthenticator({ scopes: { 'O=Acme, CN=service-b': ['vault:open'] } })] },
  });
  listening = await service.listen({
    tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: false },
  });
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.close()));
  await service.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

describe('mutual TLS: a real TLS server, certificates made by openssl for the test', () => {
  it('serves HTTPS, and the client certificate subject is the principal', async () => {
    expect(listening.url.startsWith('https://127.0.0.1:')).toBe(true);
    const answer = await call('/ops/whoami', agent({ key: pki.clientKey, cert: pki.clientCert }));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ principal: 'O=Acme, CN=service-a' });
  });

  it('works through the typed client with its own dispatcher', async () => {
    const client = createClient(contract, { baseUrl: listening.url, dispatcher: agent({ key: pki.clientKey, cert: pki.clientCert }) });
    try {
      expect(await client.call('whoami', {})).toEqual({ principal: 'O=Acme, CN=service-a' });
    } finally {
      await client.close();
    }
  });

  it('answers 401 with a challenge when no certificate is sent', async () => {
    const answer = await call('/ops/whoami', agent());
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('ClientCertificate realm="vault"');
    expect(answer.body).toMatchObject({ code: 'SB_UNAUTHORIZED', detail: 'Send credentials: a client certificate' });
  });

  it('answers 401 for a certificate of another CA with the same subject', async () => {
    const answer = await call('/ops/whoami', agent({ key: pki.rogueKey, cert: pki.rogueCert }));
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ code: 'SB_UNAUTHORIZED' });
    expect(String(answer.body.detail)).toMatch(/not trusted/);
  });

  it('answers 403 when the subject lacks the operation scope', async () => {
    const answer = await call('/ops/open', agent({ key: pki.clientKey, cert: pki.clientCert }));
    expect(answer.status).toBe(403);
    expect(answer.body).toMatchObject({ code: 'SB_FORBIDDEN' });
  });

  it('answers 401 on a plain HTTP connection of the same service', async () => {
    const plain = await service.listen().catch((error: unknown) => error);
    // A service listens once; a plain connection is tested through handle() on a server of its own.
    expect(plain).toBeInstanceOf(Error);
    const { createServer } = await import('node:http');
    const server = createServer(service.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const address = server.address() as { port: number };
      const response = await request(`http://127.0.0.1:${address.port}/ops/whoami`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(response.statusCode).toBe(401);
      expect(await response.body.json()).toMatchObject({ code: 'SB_UNAUTHORIZED' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
