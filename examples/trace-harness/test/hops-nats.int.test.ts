import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTraceHarnessService } from '../src/service.js';
import { callbackServer, runHarnessCases } from './harness-cases.js';

describe('trace context over a message through NATS JetStream', () => {
  let callbacks: Awaited<ReturnType<typeof callbackServer>>;
  beforeAll(async () => {
    callbacks = await callbackServer();
  });
  afterAll(() => callbacks.close());

  it('keeps every rule the W3C harness checks: HTTP → message → HTTP', async () => {
    const service = await startTraceHarnessService({ hop: 'message', broker: 'nats://127.0.0.1:4222' });
    try {
      await runHarnessCases(service.endpoint, callbacks);
    } finally {
      await service.close();
    }
  });
});
