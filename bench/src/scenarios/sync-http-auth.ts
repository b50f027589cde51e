import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { cachedToken, createClient } from '@switchboard/http';
import { jwtAuthenticator } from '@switchboard/jwt';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { benchContract, payload } from '../contract.js';
import { type ChildServer, startChild } from '../lib/child.js';
import { type LoadResult, runLoad } from '../lib/http-load.js';
import type { Scenario } from '../lib/scenario.js';
import { round } from '../lib/stats.js';

const server = (name: string) => fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url));

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * Authentication on vs off, same run: the typed client calling the Switchboard server without
 * authentication, and calling the same server with JWT bearer authentication (ES256, a JWKS
 * served over HTTP by this process, a scope required) with a `cachedToken` provider. Rounds
 * alternate between the two (the order rotates) and the median round is reported.
 */
export const syncHttpAuth: Scenario = {
  name: 'sync-http-auth',
  description: 'sync call with JWT authentication on vs off (typed client, cached token), 1 and 64 in flight',
  async run(ctx) {
    const durationMs = Math.round(5000 * ctx.scale);
    const warmupMs = Math.round(1000 * ctx.scale);
    const rounds = ctx.scale < 1 ? 1 : 3;
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256', use: 'sig' };
    const jwks = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })),
    );
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const token = () =>
      new SignJWT({ scope: 'bench:save' })
        .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
        .setIssuer('https://bench.invalid/')
        .setAudience('bench')
        .setSubject('bench-client')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
    const subjects = [
      { name: 'switchboard server + client, no auth', server: 'switchboard', auth: false },
      { name: 'switchboard server (JWT) + client (token)', server: 'switchboard-jwt', auth: true },
    ] as const;
    const servers = new Map<string, ChildServer>();
    try {
      for (const subject of subjects)
        servers.set(subject.server, await startChild(server(subject.server), [], { BENCH_JWKS_URL: jwksUrl }));
      const input = JSON.parse(payload) as { name: string; email: string; tags: string[]; age: number };
      for (const concurrency of [1, 64]) {
        const results = new Map<string, LoadResult[]>(subjects.map((s) => [s.name, []]));
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < subjects.length; i++) {
            const subject = subjects[(i + r) % subjects.length] as (typeof subjects)[number];
            const origin = `http://127.0.0.1:${String(servers.get(subject.server)?.info.port)}`;
            const client = createClient(benchContract, {
              baseUrl: origin,
              connections: concurrency,
              retry: false,
              breaker: false,
              ...(subject.auth ? { auth: cachedToken(token) } : {}),
            });
            const result = await runLoad({
              origin,
              path: '/ops/save',
              body: payload,
              concurrency,
              durationMs,
              warmupMs,
              send: () => client.call('save', input),
            });
            await client.close();
            results.get(subject.name)?.push(result);
          }
        }
        const offRps = median((results.get(subjects[0].name) ?? []).map((x) => x.rps));
        const offP50 = median((results.get(subjects[0].name) ?? []).map((x) => x.p50Ms));
        for (const subject of subjects) {
          const runs = results.get(subject.name) ?? [];
          const rps = median(runs.map((x) => x.rps));
          const p50Ms = median(runs.map((x) => x.p50Ms));
          ctx.record({
            scenario: 'sync-http-auth',
            subject: subject.name,
            load: `${concurrency} in flight`,
            metrics: {
              rps,
              p50Ms,
              p99Ms: median(runs.map((x) => x.p99Ms)),
              errors: runs.reduce((sum, x) => sum + x.errors, 0),
              rounds: runs.length,
              ratioToNoAuth: round(rps / offRps, 3),
              addedP50Ms: round(p50Ms - offP50, 3),
            },
          });
        }
      }
      // The server's cost per request, in this process: a reused token (remembered) and a fresh one
      // (signature checked every time), with the JWKS already fetched.
      for (const [cache, count] of [
        [true, 100_000],
        [false, 2_000],
      ] as const) {
        const authenticator = jwtAuthenticator({
          jwks: jwksUrl,
          issuer: 'https://bench.invalid/',
          audience: 'bench',
          cacheTtlMs: cache ? 60_000 : 0,
        });
        const req = { headers: { authorization: `Bearer ${await token()}` } } as unknown as IncomingMessage;
        await authenticator.verify(req);
        const started = process.hrtime.bigint();
        for (let i = 0; i < count; i++) {
          const verdict = authenticator.verify(req);
          if (verdict instanceof Promise) await verdict;
        }
        const micros = Number(process.hrtime.bigint() - started) / 1e3 / count;
        ctx.record({
          scenario: 'sync-http-auth',
          subject: cache ? 'jwtAuthenticator.verify, token remembered' : 'jwtAuthenticator.verify, ES256 signature checked',
          load: 'in process',
          metrics: { microsPerRequest: round(micros, 3), requests: count },
        });
      }
    } finally {
      await Promise.all([...servers.values()].map((child) => child.stop()));
      await new Promise((resolve) => jwks.close(resolve));
    }
  },
};
