import { afterAll, beforeAll, describe, it } from 'vitest';
import { type HopKind, startTraceHarnessService } from '../src/service.js';
import { callbackServer, runHarnessCases } from './harness-cases.js';

// Every W3C Trace Context rule the public harness checks, on each hop (the message hop through the
// in-memory broker here; through NATS JetStream in hops-nats.int.test.ts).
describe('trace context over one hop of each kind', () => {
  let callbacks: Awaited<ReturnType<typeof callbackServer>>;
  beforeAll(async () => {
    callbacks = await callbackServer();
  });
  afterAll(() => callbacks.close());

  for (const hop of ['direct', 'sync', 'message', 'job'] as HopKind[]) {
    it(`keeps every rule on the ${hop} hop`, async () => {
      const service = await startTraceHarnessService({ hop });
      try {
        await runHarnessCases(service.endpoint, callbacks);
      } finally {
        await service.close();
      }
    });
  }
});
