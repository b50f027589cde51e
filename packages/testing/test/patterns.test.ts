import { createTestbed, type Testbed } from '@switchboard/testing';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { shop, shopHandlers } from './fixtures.js';

describe('one operation, called every way', () => {
  let bed: Testbed;
  const seen: string[] = [];
  beforeAll(async () => {
    bed = await createTestbed({
      services: {
        shop: { serves: shop, handlers: shopHandlers, jobs: true },
        billing: { consumes: (m) => m.on(shop, 'order.placed', (data) => void seen.push(`billing:${data.orderId}`)) },
        mail: { consumes: (m) => m.on(shop, '*', (_data, ctx) => void seen.push(`mail:${ctx.type}`)) },
      },
    });
  });
  afterAll(() => bed.close());

  it.each(['http', 'job', 'message'] as const)('answers the typed output via %s', async (via) => {
    const outcome = await bed.call(shop, 'place', { item: 'tea', quantity: 2 }, { via });
    expect(outcome).toMatchObject({ via, ok: true, value: { orderId: 'order-tea-2', item: 'tea', quantity: 2, via } });
    if (outcome.ok) expectTypeOf(outcome.value).toEqualTypeOf<{ orderId: string; item: string; quantity: number; via: string }>();
    if (via === 'job') expect(outcome.jobId).toEqual(expect.any(String));
    if (via === 'message') expect(outcome.receipt?.groups).toMatchObject([{ group: 'shop', state: 'processed', attempts: 1 }]);
  });

  it.each(['http', 'job', 'message'] as const)('answers the declared error with its data via %s', async (via) => {
    const outcome = await bed.call(shop, 'place', { item: 'unobtainium', quantity: 1 }, { via });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ code: 'OutOfStock', status: 409, data: { item: 'unobtainium' } });
    if (via === 'message') expect(outcome.deadLetter).toMatchObject({ reason: 'permanent', group: 'shop' });
  });

  it('refuses invalid input before sending, whichever way', async () => {
    // @ts-expect-error quantity must be a number
    const http = await bed.call(shop, 'place', { item: 'tea', quantity: 'two' });
    expect(http).toMatchObject({ ok: false, error: { code: 'SB_VALIDATION' } });
    // @ts-expect-error quantity must be a number
    await expect(bed.call(shop, 'place', { item: 'tea', quantity: 'two' }, { via: 'message' })).rejects.toMatchObject({
      code: 'SB_VALIDATION',
    });
  });

  it('waits for an event to be handled by every group that consumes it', async () => {
    const { messageId, receipt } = await bed.emit(shop, 'order.placed', { orderId: 'o-1' });
    expect(receipt.source).toBe('shop');
    expect(receipt.groups.map((g) => [g.group, g.state]).sort()).toEqual([
      ['billing', 'processed'],
      ['mail', 'processed'],
    ]);
    expect(seen).toEqual(expect.arrayContaining(['billing:o-1', 'mail:shop.order.placed']));
    expect((await bed.receiptNow(messageId))?.done).toBe(true);
  });

  it('shows what each group subscribed to the topic did with an event it has no handler for', async () => {
    // billing takes only `order.placed`, but a group receives every event of the topic: the one it
    // has no handler for is dead-lettered there (`unknown-type`), and the testbed waits for that too.
    const { messageId, receipt } = await bed.emit(shop, 'shop.opened');
    expect(Object.fromEntries(receipt.groups.map((g) => [g.group, g.state]))).toEqual({ mail: 'processed', billing: 'dead-lettered' });
    const letter = await bed.deadLetter(messageId, { reason: 'unknown-type' });
    expect(letter).toMatchObject({ group: 'billing', source: 'shop', type: 'shop.shop.opened' });
  });

  it('sends as any service and awaits the receipt by MessageId', async () => {
    const { messageId } = await bed.messaging('billing').invoke(shop, 'place', { item: 'jam', quantity: 3 });
    const receipt = await bed.receipt(messageId, { source: 'billing' });
    expect(receipt).toMatchObject({ messageId, source: 'billing', done: true, groups: [{ group: 'shop', state: 'processed' }] });
    expect(JSON.parse(receipt.groups[0]?.result ?? 'null')).toMatchObject({ orderId: 'order-jam-3', via: 'message' });
  });

  it('serves receipts and jobs over its HTTP routes, as the real service does', async () => {
    const { messageId } = await bed.messaging().invoke(shop, 'place', { item: 'oil', quantity: 1 });
    await bed.receipt(messageId);
    const { request } = await import('undici');
    const response = await request(`${bed.url('shop')}/receipts/${messageId}?source=testbed`, { dispatcher: bed.network.dispatcher });
    expect(response.statusCode).toBe(200);
    expect(await response.body.json()).toMatchObject({ messageId, groups: [{ group: 'shop', state: 'processed' }] });
    const job = await bed.jobs(shop).submit('place', { item: 'oil', quantity: 4 });
    expect((await bed.job(job.jobId)).status).toBe('succeeded');
    expect(await bed.jobs(shop).wait(job)).toMatchObject({ orderId: 'order-oil-4', via: 'job' });
  });
});
