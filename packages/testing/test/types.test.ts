import type { CallOutcome, HandlersOf, ServiceSpec } from '@switchboard/testing';
import { createTestbed } from '@switchboard/testing';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { shop, shopHandlers } from './fixtures.js';

describe('types from the contract', () => {
  it('checks handlers against the contract served, and types call outcomes and emits', async () => {
    expectTypeOf<ServiceSpec<typeof shop>['handlers']>().toEqualTypeOf<typeof shopHandlers | HandlersOf<typeof shop> | undefined>();
    const bed = await createTestbed({
      services: {
        shop: {
          serves: shop,
          // @ts-expect-error `place` must answer the contract's output
          handlers: { ...shopHandlers, place: () => ({ wrong: true }) },
          serveMessages: false,
        },
      },
    });
    try {
      expectTypeOf(bed.call(shop, 'slow', { ms: 1 })).resolves.toEqualTypeOf<CallOutcome<typeof shop, 'slow'>>();
      // @ts-expect-error no such operation
      expect(() => bed.call(shop, 'refund', {})).toBeTypeOf('function');
      // @ts-expect-error `shop.opened` carries no data
      await expect(bed.emit(shop, 'shop.opened', { any: 1 })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
      // @ts-expect-error `order.placed` needs its data
      await expect(bed.emit(shop, 'order.placed')).rejects.toMatchObject({ code: 'SB_VALIDATION' });
      const inline = await createTestbed({
        services: {
          watcher: { consumes: (m) => void m.on(shop, 'order.placed', (data) => expectTypeOf(data.orderId).toEqualTypeOf<string>()) },
          shop: {
            serves: shop,
            handlers: {
              ...shopHandlers,
              place: (input) => {
                expectTypeOf(input.quantity).toEqualTypeOf<number>();
                return { orderId: 'inline', item: input.item, quantity: input.quantity, via: 'inline' };
              },
            },
          },
        },
      });
      expect(await inline.call(shop, 'place', { item: 'a', quantity: 1 })).toMatchObject({ ok: true, value: { orderId: 'inline' } });
      await inline.close();
      const outcome = await bed.call(shop, 'slow', { ms: 1 });
      expect(outcome).toMatchObject({ ok: true, value: { waited: 1 } });
    } finally {
      await bed.close();
    }
  });
});
