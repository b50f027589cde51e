import { currentTrace, defineContract, event, implement, operation, parseTraceparent, traceHeaders } from '@switchboard/core';
import { createClient, createHttpService, createJobsClient, enableJobs } from '@switchboard/http';
import { createMemoryBroker, createMemoryJobStore } from '@switchboard/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMessaging } from '../src/index.js';

/**
 * Trace context, automatic: what a handler calls, submits, sends, emits or invokes continues the
 * handler's trace without being given a context; an explicit one still wins.
 */
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = `00-${TRACE}-00f067aa0ba902b7-01`;
const OTHER = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';

const seen = z.object({ traceparent: z.string(), tracestate: z.string().optional() });
const back = defineContract({
  name: 'ambient-back',
  operations: {
    whoami: operation({ input: z.object({}), output: seen }),
    slow: operation({ input: z.object({}), output: seen }),
  },
  events: { 'ping.sent': event({ data: z.object({ n: z.number() }) }) },
});
const how = z.enum(['call', 'explicit', 'context', 'submit', 'send', 'invoke', 'fetch']);
const frontContract = defineContract({
  name: 'ambient-front',
  operations: { hop: operation({ input: z.object({ how }), output: z.object({ own: z.string(), seen: seen.optional() }) }) },
});

const seenBy = (ctx: { traceparent?: string; tracestate?: string }) =>
  ctx.tracestate === undefined
    ? { traceparent: ctx.traceparent ?? '' }
    : { traceparent: ctx.traceparent ?? '', tracestate: ctx.tracestate };

describe('ambient trace context', () => {
  const broker = createMemoryBroker({ drainTimeoutMs: 200 });
  const consumer = createMessaging({ broker, service: 'ambient-back', deadLetters: false });
  const producer = createMessaging({ broker, service: 'ambient-front', deadLetters: false });
  const received: Array<{ via: string; traceparent: string; tracestate: string | undefined }> = [];
  const jobs = enableJobs(back, { store: createMemoryJobStore(), operations: { slow: true, whoami: false } });
  const backHandlers = implement(back, {
    whoami: (_input, ctx) => {
      if (ctx.via === 'message') received.push({ via: 'invoke', traceparent: ctx.traceparent ?? '', tracestate: ctx.tracestate });
      return seenBy(ctx);
    },
    slow: (_input, ctx) => seenBy(ctx),
  });
  const backHttp = createHttpService({ contract: back, handlers: backHandlers, routes: jobs.routes, interceptors: jobs.interceptors });
  let frontUrl = '';
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    jobs.start(backHttp);
    const backUrl = (await backHttp.listen({ port: 0, host: '127.0.0.1' })).url;
    const client = createClient(back, { baseUrl: backUrl });
    const jobsClient = createJobsClient(back, { baseUrl: backUrl });
    consumer.serve(back, backHandlers);
    // A message handler that sends on and calls out: both continue the delivery's trace.
    consumer.on(back, 'ping.sent', async (data, ctx) => {
      received.push({ via: `event ${data.n}`, traceparent: ctx.traceparent ?? '', tracestate: ctx.tracestate });
      if (data.n === 1) {
        await consumer.emit(back, 'ping.sent', { n: 2 });
        const answer = await client.call('whoami', {});
        received.push({ via: 'call from a consumer', traceparent: answer.traceparent, tracestate: answer.tracestate });
      }
    });
    await consumer.start();
    const front = createHttpService({
      contract: frontContract,
      handlers: implement(frontContract, {
        hop: async ({ how }, ctx) => {
          const own = ctx.traceparent ?? '';
          switch (how) {
            case 'call':
              return { own, seen: await client.call('whoami', {}) };
            case 'explicit':
              return { own, seen: await client.call('whoami', {}, { traceparent: `00-${OTHER}-00f067aa0ba902b7-01` }) };
            case 'context':
              return { own, seen: await client.call('whoami', {}, { context: { traceparent: `00-${OTHER}-00f067aa0ba902b7-01` } }) };
            case 'submit': {
              const job = await jobsClient.submit('slow', {});
              expect(job.traceparent.slice(3, 35)).toBe(own.slice(3, 35));
              return { own, seen: await jobsClient.wait(job) };
            }
            case 'send':
              await producer.emit(back, 'ping.sent', { n: 1 });
              return { own };
            case 'invoke':
              await producer.invoke(back, 'whoami', {});
              return { own };
            case 'fetch': {
              const headers = traceHeaders();
              return { own, seen: headers };
            }
          }
        },
      }),
    });
    frontUrl = (await front.listen({ port: 0, host: '127.0.0.1' })).url;
    closers.push(
      () => front.close(),
      () => client.close(),
      () => jobsClient.close(),
      () => consumer.close(),
      () => producer.close(),
      () => jobs.close({ timeoutMs: 1000 }),
      () => backHttp.close(),
      () => broker.close(),
    );
  });
  afterAll(async () => {
    for (const close of closers) await close();
  });

  async function hop(kind: z.infer<typeof how>, tracestate = 'vendor=1'): Promise<{ own: string; seen?: z.infer<typeof seen> }> {
    const response = await fetch(`${frontUrl}/ops/hop`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: PARENT, tracestate },
      body: JSON.stringify({ how: kind }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as { own: string; seen?: z.infer<typeof seen> };
  }

  it('a sync call from a handler continues its trace, tracestate included', async () => {
    const { own, seen } = await hop('call');
    expect(parseTraceparent(own)?.traceId).toBe(TRACE);
    expect(parseTraceparent(seen?.traceparent)?.traceId).toBe(TRACE);
    expect(seen?.traceparent).not.toBe(own);
    expect(seen?.tracestate).toBe('vendor=1');
  });

  it('an explicit traceparent wins over the ambient trace, and brings no ambient tracestate', async () => {
    const { seen } = await hop('explicit');
    expect(parseTraceparent(seen?.traceparent)?.traceId).toBe(OTHER);
    expect(seen?.tracestate).toBeUndefined();
  });

  it('an explicit context wins over the ambient trace', async () => {
    const { seen } = await hop('context');
    expect(parseTraceparent(seen?.traceparent)?.traceId).toBe(OTHER);
  });

  it('a job submitted from a handler runs in its trace, with its tracestate', async () => {
    const { seen } = await hop('submit');
    expect(parseTraceparent(seen?.traceparent)?.traceId).toBe(TRACE);
    expect(seen?.tracestate).toBe('vendor=1');
  });

  it("a handler's own HTTP request gets trace headers of the ambient trace", async () => {
    const { own, seen } = await hop('fetch', 'a=1, b=2');
    expect(parseTraceparent(seen?.traceparent)?.traceId).toBe(TRACE);
    expect(seen?.traceparent).not.toBe(own);
    expect(seen?.tracestate).toBe('a=1,b=2');
  });

  it('an event emitted from a handler continues its trace; the consumer sends and calls on in the same trace', async () => {
    received.length = 0;
    await hop('send');
    await until(() => received.length >= 3);
    for (const entry of received) {
      expect(parseTraceparent(entry.traceparent)?.traceId, entry.via).toBe(TRACE);
      expect(entry.tracestate, entry.via).toBe('vendor=1');
    }
    expect(new Set(received.map((entry) => entry.via))).toEqual(new Set(['event 1', 'event 2', 'call from a consumer']));
  });

  it('an operation invoked through the broker from a handler continues its trace', async () => {
    received.length = 0;
    await hop('invoke');
    await until(() => received.some((entry) => entry.via === 'invoke'));
    const entry = received.find((e) => e.via === 'invoke');
    expect(parseTraceparent(entry?.traceparent)?.traceId).toBe(TRACE);
    expect(entry?.tracestate).toBe('vendor=1');
  });

  it('outside a handler nothing is ambient: a send starts a trace of its own', async () => {
    expect(currentTrace()).toBeUndefined();
    received.length = 0;
    await producer.invoke(back, 'whoami', {});
    await until(() => received.some((entry) => entry.via === 'invoke'));
    expect(parseTraceparent(received.find((e) => e.via === 'invoke')?.traceparent)?.traceId).not.toBe(TRACE);
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}
