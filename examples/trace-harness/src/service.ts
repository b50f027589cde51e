import { randomUUID } from 'node:crypto';
import { connectBroker } from '@switchboard/connect';
import { defineContract, type HandlerContext, implement, operation, traceHeaders } from '@switchboard/core';
import { createClient, createHttpService, createJobsClient, enableJobs, type HttpService } from '@switchboard/http';
import { createMemoryJobStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { z } from 'zod';

/**
 * The service the W3C Trace Context test harness (w3c/trace-context, `test/`) drives. The harness
 * POSTs a JSON array of `{ url, arguments }` to the front service's `test` operation; each entry
 * must be POSTed to its `url` with `arguments` as the body, carrying the trace context on. Between
 * the front and the calls back to the harness sits one hop of the chosen kind:
 *
 * - `direct`: the front calls back itself (no hop);
 * - `sync`: the front calls the back service's `relay` operation over sync HTTP;
 * - `message`: the front invokes `relay` through the broker (a message); the back's consumer runs it;
 * - `job`: the front submits `relay` as an async HTTP job and waits for its result.
 *
 * The harness reads the answer only after it, so the front answers once every call back is made.
 */
export type HopKind = 'direct' | 'sync' | 'message' | 'job';
export const HOP_KINDS: readonly HopKind[] = ['direct', 'sync', 'message', 'job'];

const action = z.object({ url: z.url({ protocol: /^https?$/ }), arguments: z.unknown().optional() });
const actions = z.array(action).max(100);
type Actions = z.infer<typeof actions>;

export const front = defineContract({
  name: 'trace-front',
  description: 'Entry point of the W3C Trace Context harness.',
  operations: {
    test: operation({ description: 'POSTs each `arguments` to its `url`, through one hop.', input: actions, output: z.null() }),
  },
});

export const back = defineContract({
  name: 'trace-back',
  description: 'The far side of the hop: makes the calls back to the harness.',
  operations: {
    relay: operation({
      description: 'POSTs each `arguments` to its `url`; `token` tells the front which run finished.',
      input: z.object({ actions, token: z.string().max(100).optional() }),
      output: z.null(),
      timeoutMs: 20_000,
    }),
  },
});

/** POSTs each action's arguments to its url with a new span of the handler's trace. */
async function callBack(list: Actions, ctx: HandlerContext): Promise<void> {
  for (const { url, arguments: body } of list) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...traceHeaders(ctx) },
      body: JSON.stringify(body ?? []),
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
  }
}

export interface TraceHarnessService {
  /** The URL to give the harness (`python test.py <url>`). */
  readonly endpoint: string;
  close(): Promise<void>;
}

export interface TraceHarnessOptions {
  readonly hop: HopKind;
  /** Port of the front service (the harness's endpoint). Default 0: any free port. */
  readonly port?: number;
  readonly host?: string;
  /** Broker of the `message` hop (an engine URL, e.g. `nats://127.0.0.1:4222`). Default `memory:`. */
  readonly broker?: string;
}

/** Starts the front and back services for one hop kind. */
export async function startTraceHarnessService(options: TraceHarnessOptions): Promise<TraceHarnessService> {
  const host = options.host ?? '127.0.0.1';
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    // Runs of the message hop waiting for the back's consumer, by token.
    const waiting = new Map<string, () => void>();
    const backHandlers = implement(back, {
      relay: async ({ actions: list, token }, ctx) => {
        await callBack(list, ctx);
        if (token !== undefined) waiting.get(token)?.();
        return null;
      },
    });

    let relay: (list: Actions, ctx: HandlerContext) => Promise<void>;
    if (options.hop === 'direct') {
      relay = callBack;
    } else if (options.hop === 'message') {
      // Names of its own on a shared server (streams, queues, consumer groups).
      const prefix = `trace${randomUUID().slice(0, 8)}`;
      const url = options.broker ?? 'memory:';
      const broker = await connectBroker(
        url.startsWith('memory:') || url.includes('prefix=') ? url : `${url}${url.includes('?') ? '&' : '?'}prefix=${prefix}`,
      );
      closers.push(() => broker.close());
      const messaging = createMessaging({ broker, service: `${prefix}-back`, deadLetters: false });
      messaging.serve(back, backHandlers);
      await messaging.start();
      closers.push(() => messaging.close());
      relay = async (list, ctx) => {
        const token = randomUUID();
        const done = new Promise<void>((resolve) => waiting.set(token, resolve));
        try {
          // The message continues the handler's trace: its traceparent/tracestate extensions.
          await messaging.invoke(back, 'relay', { actions: list, token }, { traceparent: ctx.traceparent, ...tracestateOf(ctx) });
          await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('the back did not run')), 15_000))]);
        } finally {
          waiting.delete(token);
        }
      };
    } else {
      const jobs = enableJobs(back, { store: createMemoryJobStore(), operations: { relay: true } });
      const backHttp: HttpService = createHttpService({
        contract: back,
        handlers: backHandlers,
        routes: jobs.routes,
        interceptors: jobs.interceptors,
      });
      jobs.start(backHttp);
      const listening = await backHttp.listen({ port: 0, host });
      closers.push(async () => {
        await jobs.close({ timeoutMs: 2000 });
        await backHttp.close();
      });
      if (options.hop === 'sync') {
        const client = createClient(back, { baseUrl: listening.url, timeoutMs: 15_000 });
        closers.push(() => client.close());
        // The handler's context carries deadline, trace and signal over.
        relay = async (list, ctx) => {
          await client.call('relay', { actions: list }, { context: ctx });
        };
      } else {
        const client = createJobsClient(back, { baseUrl: listening.url });
        closers.push(() => client.close());
        // Submit, every poll and the result fetch continue the handler's trace.
        relay = async (list, ctx) => {
          await client.run('relay', { actions: list }, { traceparent: ctx.traceparent, ...tracestateOf(ctx), timeoutMs: 15_000 });
        };
      }
    }

    const frontHttp = createHttpService({
      contract: front,
      handlers: implement(front, {
        test: async (list, ctx) => {
          await relay(list, ctx);
          return null;
        },
      }),
    });
    const listening = await frontHttp.listen({ port: options.port ?? 0, host });
    closers.push(() => frontHttp.close());
    return { endpoint: `${listening.url}/ops/test`, close };
  } catch (error) {
    await close();
    throw error;
  }
}

function tracestateOf(ctx: HandlerContext): { tracestate?: string } {
  return ctx.tracestate === undefined ? {} : { tracestate: ctx.tracestate };
}
