import { defineContract, implement, operation, parseTraceparent, setAmbientTrace } from '@switchboard/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, createHttpService } from '../src/index.js';

/**
 * The ambient trace turned off (setAmbientTrace(false)): a handler's outgoing call made without a
 * context starts a new trace, an explicit context still continues the caller's, and turned on
 * again the call continues the handler's trace unaided.
 */
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE}-00f067aa0ba902b7-01`;

const back = defineContract({
  name: 'ambient-off-back',
  operations: { whoami: operation({ input: z.object({}), output: z.object({ traceparent: z.string() }) }) },
});
const front = defineContract({
  name: 'ambient-off-front',
  operations: {
    hop: operation({
      input: z.object({ explicit: z.boolean() }),
      output: z.object({ own: z.string(), seen: z.string() }),
    }),
  },
});

describe('the ambient trace turned off', () => {
  const backService = createHttpService({
    contract: back,
    handlers: implement(back, { whoami: (_input, ctx) => ({ traceparent: ctx.traceparent ?? '' }) }),
  });
  let frontService: ReturnType<typeof createHttpService> | undefined;
  let frontUrl = '';
  let backClient: ReturnType<typeof createClient<typeof back>> | undefined;

  beforeAll(async () => {
    const backUrl = (await backService.listen({ port: 0, host: '127.0.0.1' })).url;
    const client = createClient(back, { baseUrl: backUrl, retry: false });
    backClient = client;
    frontService = createHttpService({
      contract: front,
      handlers: implement(front, {
        hop: async ({ explicit }, ctx) => {
          const seen = await client.call('whoami', {}, explicit ? { context: ctx } : {});
          return { own: ctx.traceparent ?? '', seen: seen.traceparent };
        },
      }),
    });
    frontUrl = (await frontService.listen({ port: 0, host: '127.0.0.1' })).url;
  });

  afterEach(() => setAmbientTrace(true));

  afterAll(async () => {
    await backClient?.close();
    await frontService?.close();
    await backService.close();
  });

  const hop = async (explicit: boolean) => {
    const response = await fetch(`${frontUrl}/ops/hop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: PARENT },
      body: JSON.stringify({ explicit }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { own: string; seen: string };
    return { own: parseTraceparent(body.own), seen: parseTraceparent(body.seen) };
  };

  it('on (the default): the outgoing call continues the handler trace', async () => {
    const { own, seen } = await hop(false);
    expect(own?.traceId).toBe(TRACE);
    expect(seen?.traceId).toBe(TRACE);
  });

  it('off: the outgoing call without a context starts a new trace; with the context it continues', async () => {
    setAmbientTrace(false);
    const unaided = await hop(false);
    expect(unaided.own?.traceId).toBe(TRACE);
    expect(unaided.seen).toBeDefined();
    expect(unaided.seen?.traceId).not.toBe(TRACE);
    const explicit = await hop(true);
    expect(explicit.seen?.traceId).toBe(TRACE);
    expect(explicit.seen?.parentId).not.toBe(explicit.own?.parentId);
  });

  it('on again: the outgoing call continues the handler trace', async () => {
    setAmbientTrace(false);
    await hop(false);
    setAmbientTrace(true);
    const { seen } = await hop(false);
    expect(seen?.traceId).toBe(TRACE);
  });
});
