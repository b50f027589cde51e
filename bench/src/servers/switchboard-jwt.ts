import { createHttpService } from '@switchboard/http';
import { jwtAuthenticator } from '@switchboard/jwt';
import { benchContract } from '../contract.js';

// The same service as switchboard.ts, with JWT bearer authentication against the JWKS the bench
// serves (BENCH_JWKS_URL): every call's token is checked (a verified token is remembered until its
// expiry, as by default), and the operation requires a scope.
const jwks = process.env.BENCH_JWKS_URL;
if (jwks === undefined) throw new Error('BENCH_JWKS_URL is not set');
const service = createHttpService({
  contract: benchContract,
  handlers: { save: (input) => ({ saved: true, name: input.name }) },
  idempotency: false,
  auth: {
    authenticators: [jwtAuthenticator({ jwks, issuer: 'https://bench.invalid/', audience: 'bench' })],
    scopes: { save: ['bench:save'] },
  },
});
const { port } = await service.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port }));
process.on('SIGTERM', () => {
  void service.close({ timeoutMs: 1000 }).then(() => process.exit(0));
});
