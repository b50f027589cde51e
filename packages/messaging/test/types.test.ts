import { defineContract, event, type HandlerContext, type Handlers, message, operation } from '@switchboard/core';
import { createMemoryBroker } from '@switchboard/memory';
import { createMessaging, type MessageContext, type Sent } from '@switchboard/messaging';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

// Inference of the messaging API from a contract, checked by the type checker
// (`npx tsc -p tsconfig.test.json`); the runtime assertions check that misuse the types refuse
// is refused at run time as well.

const orders = defineContract({
  name: 'orders',
  operations: {
    place: operation({
      input: z.object({ sku: z.string(), quantity: z.number().int() }),
      output: z.object({ orderId: z.string() }),
    }),
  },
  messages: {
    // Input and output differ: the sender passes a string, the handler gets a Date.
    'order.scheduled': message({ schema: z.object({ at: z.string().transform((value) => new Date(value)) }) }),
  },
  events: {
    'order.cancelled': event(),
    'order.shipped': event({ data: z.object({ carrier: z.string() }) }),
  },
});

function setup() {
  const broker = createMemoryBroker();
  const messaging = createMessaging({ broker, service: 'orders', deadLetters: false });
  return { broker, messaging };
}

describe('messaging type inference', () => {
  it('types send data from the message schema input, and handler data from its output', async () => {
    const { broker, messaging } = setup();
    expectTypeOf(messaging.send<typeof orders, 'order.scheduled'>)
      .parameter(2)
      .toEqualTypeOf<{ at: string }>();
    // Awaited before the broker closes: a send still in flight then rejects unhandled.
    const sent = messaging.send(orders, 'order.scheduled', { at: '2025-01-01T00:00:00Z' });
    expectTypeOf(sent).toEqualTypeOf<Promise<Sent>>();
    await sent;
    messaging.handle(orders, 'order.scheduled', (data, ctx) => {
      expectTypeOf(data).toEqualTypeOf<{ at: Date }>();
      expectTypeOf(ctx).toEqualTypeOf<MessageContext>();
    });
    const refused = [
      // @ts-expect-error the data must match the schema's input
      messaging.send(orders, 'order.scheduled', { at: 42 }),
      // @ts-expect-error not a message of the contract
      messaging.send(orders, 'order.unknown', { at: 'x' }),
    ];
    const results = await Promise.allSettled(refused);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual([
      'SB_VALIDATION',
      'SB_UNKNOWN_TYPE',
    ]);
    await broker.close();
  });

  it('emits payload-free events without data and declared events with typed data', async () => {
    const { broker, messaging } = setup();
    expectTypeOf(messaging.emit(orders, 'order.cancelled')).toEqualTypeOf<Promise<Sent>>();
    expectTypeOf(messaging.emit(orders, 'order.shipped', { carrier: 'post' })).toEqualTypeOf<Promise<Sent>>();
    const refused = [
      // @ts-expect-error a payload-free event takes no data
      messaging.emit(orders, 'order.cancelled', { reason: 'x' }),
      // @ts-expect-error a declared event needs its data
      messaging.emit(orders, 'order.shipped'),
      // @ts-expect-error the data must match the event's schema
      messaging.emit(orders, 'order.shipped', { carrier: 7 }),
    ];
    const results = await Promise.allSettled(refused);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual([
      'SB_VALIDATION',
      'SB_VALIDATION',
      'SB_VALIDATION',
    ]);
    messaging.on(orders, 'order.shipped', (data) => {
      expectTypeOf(data).toEqualTypeOf<{ carrier: string }>();
    });
    messaging.on(orders, 'order.cancelled', (data) => {
      expectTypeOf(data).toEqualTypeOf<undefined>();
    });
    messaging.on(orders, 'order.*', (data, ctx) => {
      expectTypeOf(data).toBeUnknown();
      expectTypeOf(ctx.type).toBeString();
    });
    // @ts-expect-error not an event of the contract, nor a pattern
    expect(() => messaging.on(orders, 'order.unknown', () => {})).toThrow();
    await broker.close();
  });

  it('types invoke input, and serve takes the Handlers<C> the HTTP server runs', async () => {
    const { broker, messaging } = setup();
    expectTypeOf(messaging.invoke<typeof orders, 'place'>)
      .parameter(2)
      .toEqualTypeOf<{ sku: string; quantity: number }>();
    expectTypeOf(messaging.serve<typeof orders>)
      .parameter(1)
      .toEqualTypeOf<Handlers<typeof orders>>();
    const handlers: Handlers<typeof orders> = {
      place: async (input, ctx) => {
        expectTypeOf(input).toEqualTypeOf<{ sku: string; quantity: number }>();
        expectTypeOf(ctx).toEqualTypeOf<HandlerContext>();
        return { orderId: `${input.sku}-${input.quantity}` };
      },
    };
    expect(messaging.serve(orders, handlers)).toBe(messaging);
    // @ts-expect-error every operation needs its handler
    expect(() => createMessaging({ broker, service: 'other', deadLetters: false }).serve(orders, {})).toThrow();
    const wrongOutput = {
      place: async () => ({ orderId: 1 }),
    };
    // @ts-expect-error the handler's output must match the operation's output schema
    messaging.serve(defineContract({ name: 'orders-2', operations: orders.operations }), wrongOutput);
    // @ts-expect-error the input must match the operation's input schema
    await expect(messaging.invoke(orders, 'place', { sku: 'x' })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
    await broker.close();
  });
});
