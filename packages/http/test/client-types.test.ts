import type { OperationError, SwitchboardError } from '@switchboard/core';
import type { CallError, CallResult, Client, DeclaredError } from '@switchboard/http';
import { createClient, isDeclaredError } from '@switchboard/http';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { accounts } from './client-peer.js';

type Accounts = typeof accounts;

describe('client: type inference from the contract', () => {
  const client = createClient(accounts, { baseUrl: 'http://127.0.0.1:9', breaker: false });

  it('infers operation names, inputs and outputs', async () => {
    expectTypeOf(client).toEqualTypeOf<Client<Accounts>>();
    expectTypeOf(client.call<'save'>)
      .parameter(0)
      .toEqualTypeOf<'save'>();
    expectTypeOf(client.call<'save'>)
      .parameter(1)
      .toEqualTypeOf<{ name: string; tags?: string[] | undefined }>();
    expectTypeOf(client.call<'save'>).returns.resolves.toEqualTypeOf<{ id: string; name: string }>();
    // Outputs are the schema's output type (after transforms).
    expectTypeOf(client.call<'get'>).returns.resolves.toEqualTypeOf<{ id: string; name: string; createdAt: Date }>();
    expectTypeOf(client.call<'get'>)
      .parameter(0)
      .not.toEqualTypeOf<'save'>();

    const misuse = async () => {
      // @ts-expect-error: no such operation
      await client.call('drop', {});
      // @ts-expect-error: wrong input type
      await client.call('save', { name: 1 });
      // @ts-expect-error: missing required field
      await client.call('get', {});
    };
    expect(typeof misuse).toBe('function');
    await client.close();
  });

  it('types declared errors by code with their data', () => {
    expectTypeOf<DeclaredError<Accounts, 'save'>>().toEqualTypeOf<
      OperationError<'NameTaken', { existing: string }> | OperationError<'Busy', undefined>
    >();
    expectTypeOf<DeclaredError<Accounts, 'save', 'NameTaken'>>().toEqualTypeOf<OperationError<'NameTaken', { existing: string }>>();
    expectTypeOf<DeclaredError<Accounts, 'get'>>().toBeNever();
    expectTypeOf<CallError<Accounts, 'get'>>().toEqualTypeOf<SwitchboardError>();
    expectTypeOf<CallResult<Accounts, 'save'>>().toEqualTypeOf<
      | { readonly ok: true; readonly value: { id: string; name: string } }
      | { readonly ok: false; readonly error: DeclaredError<Accounts, 'save'> | SwitchboardError }
    >();
  });

  it('narrows errors with the type guards', () => {
    const error: unknown = undefined;
    if (client.isError(error, 'save', 'NameTaken')) {
      expectTypeOf(error.code).toEqualTypeOf<'NameTaken'>();
      expectTypeOf(error.data).toEqualTypeOf<{ existing: string }>();
    }
    if (client.isError(error, 'save')) {
      expectTypeOf(error.code).toEqualTypeOf<'NameTaken' | 'Busy'>();
    }
    if (isDeclaredError(error, accounts, 'save', 'Busy')) {
      expectTypeOf(error.data).toEqualTypeOf<undefined>();
    }
    // @ts-expect-error: the operation declares no such error
    client.isError(error, 'save', 'Nope');
    expect(client.isError(error, 'save')).toBe(false);
  });

  it('narrows a result by ok, then a declared error by code', () => {
    const handle = (result: CallResult<Accounts, 'save'>): string => {
      if (result.ok) {
        expectTypeOf(result.value).toEqualTypeOf<{ id: string; name: string }>();
        return result.value.id;
      }
      const { error } = result;
      if ('data' in error) {
        if (error.code === 'NameTaken') {
          expectTypeOf(error.data).toEqualTypeOf<{ existing: string }>();
          return error.data.existing;
        }
        expectTypeOf(error.code).toEqualTypeOf<'Busy'>();
        return error.code;
      }
      expectTypeOf(error).toEqualTypeOf<SwitchboardError>();
      return error.code;
    };
    expect(handle({ ok: true, value: { id: 'a1', name: 'Ada' } })).toBe('a1');
  });
});
