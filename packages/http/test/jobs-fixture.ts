import type { IncomingMessage } from 'node:http';
import type { Handlers, JobStore } from '@switchboard/core';
import { defineContract, OperationError, operation, SwitchboardError } from '@switchboard/core';
import type { HttpJobs, HttpService, JobsOptions } from '@switchboard/http';
import { createHttpService, enableJobs } from '@switchboard/http';
import { z } from 'zod';

export const analysis = defineContract({
  name: 'analysis',
  operations: {
    analyze: operation({
      input: z.strictObject({
        text: z.string().max(10_000),
        fail: z.enum(['none', 'throw', 'declared', 'retryable']).default('none'),
        steps: z.number().int().min(0).max(20).default(0),
      }),
      output: z.object({ words: z.number(), text: z.string() }),
      errors: { Unreadable: { status: 422, title: 'Unreadable text', data: z.object({ reason: z.string() }) } },
    }),
    /** Runs until the test opens its gate, or its signal aborts. */
    gate: operation({ input: z.object({ tag: z.string() }), output: z.object({ tag: z.string() }) }),
    /** Never ends and ignores its signal. */
    hang: operation({ input: z.object({}), output: z.object({}) }),
    /** Always a job. */
    report: operation({ input: z.object({ n: z.number() }), output: z.object({ n: z.number() }), mode: 'async' }),
    /** Never a job. */
    ping: operation({ input: z.object({}), output: z.object({ pong: z.boolean() }), mode: 'sync' }),
    /** A job whose retention is tiny (set in `jobsOptions`). */
    brief: operation({ input: z.object({}), output: z.object({ done: z.boolean() }) }),
  },
});

export interface Seen {
  readonly operation: string;
  readonly via: string;
  readonly jobId: string | undefined;
  readonly traceparent: string | undefined;
  readonly principal: string | undefined;
}

export interface JobsState {
  readonly seen: Seen[];
  /** Signals of gate handlers, by tag. */
  readonly signals: Map<string, AbortSignal>;
  /** Resolves when a gate handler with this tag is running. */
  started(tag: string): Promise<void>;
  open(tag: string): void;
  attempts: number;
}

export function createJobsHandlers(): { handlers: Handlers<typeof analysis>; state: JobsState } {
  const gates = new Map<string, () => void>();
  const startWaiters = new Map<string, Array<() => void>>();
  const state: JobsState = {
    seen: [],
    signals: new Map(),
    attempts: 0,
    started: (tag) =>
      state.signals.has(tag)
        ? Promise.resolve()
        : new Promise((resolve) => startWaiters.set(tag, [...(startWaiters.get(tag) ?? []), resolve])),
    open: (tag) => gates.get(tag)?.(),
  };
  const record = (operation: string, ctx: Parameters<Handlers<typeof analysis>['ping']>[1]) =>
    state.seen.push({ operation, via: ctx.via, jobId: ctx.jobId, traceparent: ctx.traceparent, principal: ctx.principal });
  const handlers: Handlers<typeof analysis> = {
    analyze: async (input, ctx) => {
      record('analyze', ctx);
      for (let step = 1; step <= input.steps; step++) {
        ctx.progress({ percent: Math.round((step / input.steps) * 100), message: `step ${step}` });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      switch (input.fail) {
        case 'throw':
          throw new Error('secret connection string');
        case 'declared':
          throw new OperationError('Unreadable', { detail: 'Not a language', data: { reason: 'gibberish' } });
        case 'retryable':
          state.attempts += 1;
          if (state.attempts < 2) throw new SwitchboardError('SB_UNAVAILABLE', { detail: 'A dependency is down' });
          break;
        case 'none':
          break;
      }
      return { words: input.text.split(/\s+/).filter(Boolean).length, text: input.text };
    },
    gate: (input, ctx) => {
      record('gate', ctx);
      state.signals.set(input.tag, ctx.signal);
      for (const wake of startWaiters.get(input.tag) ?? []) wake();
      startWaiters.delete(input.tag);
      return new Promise((resolve, reject) => {
        gates.set(input.tag, () => resolve({ tag: input.tag }));
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    },
    hang: (_input, ctx) => {
      record('hang', ctx);
      return new Promise(() => {});
    },
    report: (input, ctx) => {
      record('report', ctx);
      return { n: input.n };
    },
    ping: () => ({ pong: true }),
    brief: () => ({ done: true }),
  };
  return { handlers, state };
}

export interface JobsServer {
  readonly url: string;
  readonly service: HttpService;
  readonly jobs: HttpJobs;
  readonly state: JobsState;
  close(): Promise<void>;
}

/** Options the cases use: short intervals so nothing sleeps long. */
export function jobsOptions(store: JobStore, extra: Partial<JobsOptions> = {}): JobsOptions {
  return {
    store,
    retryAfterSeconds: 1,
    maxWaitSeconds: 30,
    sseHeartbeatMs: 100,
    operations: {
      gate: { concurrency: 1 },
      hang: { timeoutMs: 150 },
      brief: { retentionMs: 1 },
    },
    ...extra,
    worker:
      extra.worker === false
        ? false
        : { pollIntervalMs: 20, leaseMs: 2_000, heartbeatMs: 50, retry: { baseMs: 10, maxMs: 20 }, ...extra.worker },
  };
}

export async function startJobsServer(
  store: JobStore,
  extra: Partial<JobsOptions> = {},
  principal?: (req: IncomingMessage) => string | undefined,
): Promise<JobsServer> {
  const { handlers, state } = createJobsHandlers();
  const jobs = enableJobs(analysis, jobsOptions(store, extra));
  const service = createHttpService({
    contract: analysis,
    handlers,
    routes: jobs.routes,
    interceptors: jobs.interceptors,
    bodyLimit: 4_096,
    ...(principal === undefined ? {} : { principal }),
  });
  jobs.start(service);
  const { url } = await service.listen();
  return {
    url,
    service,
    jobs,
    state,
    close: async () => {
      await jobs.close({ timeoutMs: 100 });
      await service.close({ timeoutMs: 100 });
    },
  };
}
