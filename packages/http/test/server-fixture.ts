import { once } from 'node:events';
import { connect } from 'node:net';
import type { Handlers } from '@switchboard/core';
import { defineContract, OperationError, operation, SwitchboardError } from '@switchboard/core';
import { z } from 'zod';

export const contract = defineContract({
  name: 'names',
  operations: {
    save: operation({
      input: z.strictObject({ name: z.string().min(1), tags: z.array(z.string()).default([]) }),
      output: z.object({ id: z.number(), name: z.string(), tags: z.array(z.string()) }),
      errors: { NameTaken: { status: 409, title: 'Name taken', data: z.object({ existing: z.number() }) } },
    }),
    echo: operation({
      input: z.object({ text: z.string() }),
      output: z.object({ text: z.string(), keys: z.array(z.string()) }),
    }),
    fail: operation({
      input: z.object({ how: z.enum(['throw', 'undeclared', 'switchboard', 'bad-data']) }),
      output: z.object({}),
      errors: { NameTaken: { status: 409, data: z.object({ existing: z.number() }) } },
    }),
    broken: operation({ input: z.object({}), output: z.object({ count: z.number() }) }),
    slow: operation({ input: z.object({ ms: z.number() }), output: z.object({ done: z.boolean() }) }),
    hang: operation({ input: z.object({}), output: z.object({}), timeoutMs: 10_000 }),
    count: operation({ input: z.object({ by: z.number() }), output: z.object({ total: z.number() }) }),
    /** Waits until the test calls `state.open()`. */
    gate: operation({ input: z.object({ tag: z.string().optional() }), output: z.object({ done: z.boolean() }) }),
  },
});

/** Handlers with observable side effects, fresh per test file. */
export interface FixtureState {
  total: number;
  saved: number;
  signals: AbortSignal[];
  /** Gate handlers currently waiting. */
  waiting: number;
  /** Lets every waiting gate handler finish. */
  open(): void;
}

export function createHandlers(): { handlers: Handlers<typeof contract>; state: FixtureState } {
  const gates: Array<() => void> = [];
  const state: FixtureState = {
    total: 0,
    saved: 0,
    signals: [],
    waiting: 0,
    open: () => {
      for (const release of gates.splice(0)) release();
    },
  };
  const handlers: Handlers<typeof contract> = {
    save: (input) => {
      if (input.name === 'taken') throw new OperationError('NameTaken', { detail: 'Already there', data: { existing: 7 } });
      state.saved += 1;
      return { id: state.saved, name: input.name, tags: input.tags };
    },
    echo: (input) => ({ text: input.text, keys: Object.keys(input) }),
    fail: (input) => {
      switch (input.how) {
        case 'throw':
          throw new Error('database password is hunter2');
        case 'undeclared':
          throw new OperationError('NotInContract', { detail: 'secret detail' });
        case 'switchboard':
          throw new SwitchboardError('SB_CONFLICT', { detail: 'The name changed meanwhile', retryAfterMs: 2000 });
        case 'bad-data':
          throw new OperationError('NameTaken', { data: { existing: 'nope' } });
      }
    },
    broken: () => ({ count: 'many' }) as unknown as { count: number },
    slow: async (input, ctx) => {
      state.signals.push(ctx.signal);
      await new Promise((resolve) => setTimeout(resolve, input.ms));
      return { done: true };
    },
    hang: (_input, ctx) => {
      state.signals.push(ctx.signal);
      return new Promise(() => {});
    },
    count: async (input) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      state.total += input.by;
      return { total: state.total };
    },
    gate: async (_input, ctx) => {
      state.signals.push(ctx.signal);
      state.waiting += 1;
      await new Promise<void>((resolve) => gates.push(resolve));
      state.waiting -= 1;
      return { done: true };
    },
  };
  return { handlers, state };
}

/** Sends raw bytes on a fresh socket and resolves with everything the server sent until it closed. */
export async function rawExchange(port: number, request: string, options: { keepOpenMs?: number } = {}): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(request);
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  const timer = options.keepOpenMs === undefined ? undefined : setTimeout(() => socket.destroy(), options.keepOpenMs);
  await Promise.race([once(socket, 'close'), once(socket, 'error')]);
  clearTimeout(timer);
  return received;
}

/** Polls `condition` every few milliseconds until it holds (or fails after `timeoutMs`). */
export async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('Condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
