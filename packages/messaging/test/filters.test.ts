import { createCloudEvent, encodeCloudEvent, type SettleMessage, subscribeTracing, tracing } from '@switchboard/core';
import { eventsTopic } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { engines, serviceA, until } from './harness.js';

describe.each(engines)('CloudEvents SQL subscription filters on %s', (_name, factory) => {
  it('runs the handler only for events the filter matches; the others are acknowledged and counted, never dead-lettered', async () => {
    const engine = factory();
    const settled: string[] = [];
    const listener = { asyncEnd: (message: SettleMessage) => settled.push(message.settlement) };
    const unsubscribe = subscribeTracing(tracing.settle, listener);
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const widths: number[] = [];
      b.on(
        serviceA,
        'picture.resized',
        (data) => {
          widths.push(data.width);
        },
        { filter: "subject LIKE 'pictures/%' AND priority > 2" },
      );
      await b.start();
      const send = async (subject: string, priority: number, width: number) => {
        const event = createCloudEvent({
          source: 'service-a',
          type: 'service-a.picture.resized',
          subject,
          data: { width },
          extensions: { priority },
        });
        await engine.broker.publish({ id: event.id, topic: eventsTopic(serviceA), ...encodeCloudEvent(event, engine.broker.binding) });
      };
      await send('pictures/1', 3, 100);
      await send('pictures/2', 1, 200);
      await send('orders/3', 5, 300);
      await send('pictures/4', 9, 400);
      await until(() => widths.length === 2 && b.filtered === 2, 'two handled, two filtered');
      expect(widths.sort()).toEqual([100, 400]);
      expect((await engine.deadLetters.list({})).items).toHaveLength(0);
      expect(settled.filter((outcome) => outcome === 'filtered')).toHaveLength(2);
      // An emitted event without the attribute the filter reads does not match (a missing attribute is no match).
      await a.emit(serviceA, 'picture.resized', { width: 1 }, { subject: 'pictures/5' });
      await until(() => b.filtered === 3, 'the third filtered');
      expect(widths).toHaveLength(2);
    } finally {
      unsubscribe();
      await engine.close();
    }
  });

  it('refuses a filter that does not parse, or calls an unknown function, when the handler is registered, with the position', () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      expect(() => b.on(serviceA, 'picture.resized', () => {}, { filter: "subject LIKE 'x%' AND" })).toThrow(
        expect.objectContaining({ code: 'SB_FILTER_INVALID' }),
      );
      let error: { code?: string; detail?: string } = {};
      try {
        b.on(serviceA, 'picture.resized', () => {}, { filter: 'NOSUCH(subject) = 1' });
      } catch (caught) {
        error = caught as typeof error;
      }
      expect(error.code).toBe('SB_FILTER_INVALID');
      expect(error.detail).toMatch(/NOSUCH/);
      expect(error.detail).toMatch(/column 1|offset 0|1:1/);
    } finally {
      void engine.close();
    }
  });
});

describe('the filter a subscription offers the engine', () => {
  it('is the OR of what each handler of the topic takes, parseable CESQL, or none when no handler filters', async () => {
    const { RouteTable } = await import('../src/routes.js');
    const { compileFilter } = await import('@switchboard/cesql');
    const routes = new RouteTable();
    routes.event(serviceA, 'name.processed', () => {});
    expect(routes.filterOf(eventsTopic(serviceA))).toBeUndefined();
    routes.event(serviceA, 'picture.resized', () => {}, compileFilter("subject = 'a''b'"));
    routes.event(serviceA, 'picture.*', () => {});
    const expression = routes.filterOf(eventsTopic(serviceA))!;
    const filter = compileFilter(expression);
    const event = (type: string, subject?: string) => ({
      specversion: '1.0' as const,
      id: '1',
      source: 's',
      type,
      ...(subject === undefined ? {} : { subject }),
    });
    expect(filter.matches(event('service-a.name.processed'))).toBe(true);
    expect(filter.matches(event('service-a.picture.resized', "a'b"))).toBe(true);
    expect(filter.matches(event('service-a.picture.resized', 'other'))).toBe(false);
    expect(filter.matches(event('service-a.picture.processed'))).toBe(true);
    expect(filter.matches(event('service-a.other'))).toBe(false);
  });
});
