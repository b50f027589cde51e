import type { EventData, EventInput, EventName } from '@switchboard/core';
import { changes, defineContract, event, keySchema } from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const Order = z.object({ id: z.number().int(), region: z.string(), total: z.string(), note: z.string().nullable() });

const shop = defineContract({
  name: 'shop',
  events: { 'shop.opened': event() },
  changes: [
    changes('orders', { columns: Order, key: 'id', insert: 'order.created', update: 'order.updated', delete: 'order.deleted' }),
    changes('sales.refunds', { columns: z.object({ id: z.string(), amount: z.number() }), key: ['id'], insert: 'refund.created' }),
  ],
});

describe('changes() in a contract', () => {
  it('adds typed events: the row for insert and update, the key for delete', () => {
    expectTypeOf<EventName<typeof shop>>().toEqualTypeOf<
      'shop.opened' | 'order.created' | 'order.updated' | 'order.deleted' | 'refund.created'
    >();
    expectTypeOf<EventData<typeof shop, 'order.created'>>().toEqualTypeOf<{
      id: number;
      region: string;
      total: string;
      note: string | null;
    }>();
    expectTypeOf<EventData<typeof shop, 'order.updated'>>().toEqualTypeOf<z.output<typeof Order>>();
    expectTypeOf<EventData<typeof shop, 'order.deleted'>>().toEqualTypeOf<{ id: number }>();
    expectTypeOf<EventInput<typeof shop, 'refund.created'>>().toEqualTypeOf<{ id: string; amount: number }>();
    expectTypeOf<EventData<typeof shop, 'shop.opened'>>().toEqualTypeOf<undefined>();
  });

  it('keeps the declaration: schema-qualified names, key list, event per operation', () => {
    expect(shop.changes).toHaveLength(2);
    const [orders, refunds] = shop.changes;
    expect(orders).toMatchObject({ kind: 'changes', table: 'orders', schema: 'public', name: 'orders', key: ['id'] });
    expect(orders?.events).toEqual({ insert: 'order.created', update: 'order.updated', delete: 'order.deleted' });
    expect(refunds).toMatchObject({ table: 'sales.refunds', schema: 'sales', name: 'refunds', events: { insert: 'refund.created' } });
    expect(shop.events['order.created'].data).toBe(Order);
    expect(shop.events['order.updated'].data).toBe(Order);
    expect(shop.events['order.created'].attachment).toBe(false);
  });

  it('validates delete data against the key columns only', async () => {
    const schema = shop.events['order.deleted'].data;
    expect(await validate(schema, { id: 7, region: 'eu' })).toEqual({ ok: true, value: { id: 7 } });
    expect(await validate(schema, { region: 'eu' })).toEqual({
      ok: false,
      errors: [{ pointer: '/id', message: 'key column missing or not a string, number or boolean' }],
    });
    expect((await validate(keySchema(['a', 'b']), null)).ok).toBe(false);
  });

  it('refuses bad declarations with the reason', () => {
    expect(() => changes('bad table', { columns: Order, key: 'id', insert: 'x.y' })).toThrow(/Invalid table/);
    expect(() => changes('a.b.c', { columns: Order, key: 'id', insert: 'x.y' })).toThrow(/Invalid table/);
    expect(() => changes('orders', { columns: Order, key: [], insert: 'x.y' })).toThrow(/at least one column/);
    expect(() => changes('orders', { columns: Order, key: ['id', 'id'], insert: 'x.y' })).toThrow(/twice/);
    expect(() => changes('orders', { columns: Order, key: 'id' })).toThrow(/at least one of insert, update, delete/);
    expect(() => changes('orders', { columns: Order, key: 'id', insert: 'Bad Name' })).toThrow(/Invalid event name/);
    expect(() => changes('orders', { columns: {} as never, key: 'id', insert: 'a.b' })).toThrow(/Standard Schema/);
    const orders = changes('orders', { columns: Order, key: 'id', insert: 'order.created' });
    expect(() => defineContract({ name: 'shop', changes: [orders, orders] })).toThrow(/declared twice/);
    expect(() => defineContract({ name: 'shop', events: { 'order.created': event() }, changes: [orders] })).toThrow(
      /Event order.created .* declared twice/,
    );
  });

  it('a contract without changes has none', () => {
    expect(defineContract({ name: 'plain' }).changes).toEqual([]);
  });
});
