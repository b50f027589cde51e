import type {
  CallInput,
  CallOutput,
  EventInput,
  HandlerInput,
  MessageInput,
  OperationErrorCode,
  OperationErrorData,
} from '@switchboard/core';
import { defineContract, event, implement, message, OperationError, operation } from '@switchboard/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const contract = defineContract({
  name: 'service-b',
  operations: {
    save: operation({
      input: z.object({ name: z.string().min(1), tags: z.array(z.string()).default([]) }),
      output: z.object({ saved: z.boolean() }),
      errors: { NameTaken: { status: 409, data: z.object({ existing: z.string() }) } },
      idempotent: true,
    }),
    ping: operation({ input: z.object({}), output: z.object({ pong: z.boolean() }) }),
  },
  messages: { 'name.submitted': message({ schema: z.object({ name: z.string() }) }) },
  events: {
    'name.saved': event(),
    'picture.uploaded': event({ data: z.object({ width: z.number() }), attachment: true }),
  },
});

describe('contract', () => {
  it('infers caller and handler types from the schemas', () => {
    expectTypeOf<CallInput<typeof contract, 'save'>>().toEqualTypeOf<{ name: string; tags?: string[] | undefined }>();
    expectTypeOf<HandlerInput<typeof contract, 'save'>>().toEqualTypeOf<{ name: string; tags: string[] }>();
    expectTypeOf<CallOutput<typeof contract, 'save'>>().toEqualTypeOf<{ saved: boolean }>();
    expectTypeOf<OperationErrorData<typeof contract, 'save', 'NameTaken'>>().toEqualTypeOf<{ existing: string }>();
    expectTypeOf<OperationErrorCode<typeof contract, 'save'>>().toEqualTypeOf<'NameTaken'>();
    expectTypeOf<OperationErrorCode<typeof contract, 'ping'>>().toEqualTypeOf<never>();
    expectTypeOf<MessageInput<typeof contract, 'name.submitted'>>().toEqualTypeOf<{ name: string }>();
    expectTypeOf<EventInput<typeof contract, 'name.saved'>>().toEqualTypeOf<undefined>();
    expectTypeOf<EventInput<typeof contract, 'picture.uploaded'>>().toEqualTypeOf<{ width: number }>();
  });

  it('keeps declarations and defaults', () => {
    expect(contract.operations.save.idempotent).toBe(true);
    expect(contract.operations.save.mode).toBe('either');
    expect(contract.events['name.saved']).toEqual({ kind: 'event', data: undefined, attachment: false });
    expect(contract.events['picture.uploaded'].attachment).toBe(true);
  });

  it('checks implementations against the contract', async () => {
    const handlers = implement(contract, {
      ping: () => ({ pong: true }),
      save: async (input) => {
        expectTypeOf(input.tags).toEqualTypeOf<string[]>();
        if (input.name === 'taken') throw new OperationError('NameTaken', { data: { existing: input.name } });
        return { saved: true };
      },
    });
    const ctx = { operation: 'save', via: 'http' as const, signal: new AbortController().signal, progress() {} };
    await expect(handlers.save({ name: 'x', tags: [] }, ctx)).resolves.toEqual({ saved: true });
    await expect(handlers.save({ name: 'taken', tags: [] }, ctx)).rejects.toBeInstanceOf(OperationError);
  });

  it('rejects invalid names', () => {
    expect(() => defineContract({ name: 'Bad Name' })).toThrow(/Invalid contract name/);
    expect(() => defineContract({ name: 'ok', events: { 'Bad Event': event() } })).toThrow(/Invalid event name/);
  });
});
