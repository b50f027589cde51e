import { defineContract, event, implement, message, OperationError, operation, PermanentError } from '@switchboard/core';
import { z } from 'zod';

/** A shop: `place` answers an order and declares one error; `slow` takes its time; a message and two events. */
export const shop = defineContract({
  name: 'shop',
  operations: {
    place: operation({
      input: z.strictObject({ item: z.string().min(1), quantity: z.number().int().min(1) }),
      output: z.strictObject({ orderId: z.string(), item: z.string(), quantity: z.number().int(), via: z.string() }),
      errors: { OutOfStock: { status: 409, data: z.strictObject({ item: z.string() }) } },
    }),
    slow: operation({
      input: z.strictObject({ ms: z.number().int().min(0) }),
      output: z.strictObject({ waited: z.number() }),
      timeoutMs: 60_000,
    }),
  },
  messages: {
    'stock.count': message({ schema: z.strictObject({ sku: z.string().min(1), count: z.number().int() }) }),
  },
  events: {
    'order.placed': event({ data: z.strictObject({ orderId: z.string() }) }),
    'shop.opened': event(),
  },
});

/** `place` refuses `unobtainium` (declared error) and `poison` (permanent), and says how it was reached (`ctx.via`). */
export const shopHandlers = implement(shop, {
  place: ({ item, quantity }, ctx) => {
    if (item === 'unobtainium') throw new OperationError('OutOfStock', { detail: 'none left', data: { item } });
    if (item === 'poison') throw new PermanentError('this item cannot be ordered');
    return { orderId: `order-${item}-${quantity}`, item, quantity, via: ctx.via };
  },
  slow: async ({ ms }, ctx) => {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    });
    return { waited: ms };
  },
});
