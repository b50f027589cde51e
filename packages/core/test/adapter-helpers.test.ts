import { describe, expect, it } from 'vitest';
import { isSwitchboardError, type Subscription } from '../src/index.js';
import { BrokerLifecycle, brokerErrors, plainHeaders, plainHeadersFromJson, positiveInteger } from '../src/kit.js';

describe('positiveInteger', () => {
  it('gives the fallback when the option is left out, and the value when it is an integer in range', () => {
    expect(positiveInteger(undefined, 'pollIntervalMs', 200)).toBe(200);
    expect(positiveInteger(1, 'pollIntervalMs', 200)).toBe(1);
    expect(positiveInteger(512, 'maxMessageBytes', 1, 512)).toBe(512);
  });

  it('refuses zero, negatives, fractions, NaN and values over the maximum with SB_CONFIG_INVALID naming the option', () => {
    for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 513]) {
      let caught: unknown;
      try {
        positiveInteger(value, 'maxMessageBytes', 1, 512);
      } catch (error) {
        caught = error;
      }
      expect(isSwitchboardError(caught, 'SB_CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message + String((caught as { detail?: string }).detail)).toContain('maxMessageBytes');
    }
  });
});

describe('plainHeaders', () => {
  it('keeps an object of strings as it is', () => {
    const headers = { 'ce-id': '1', 'content-type': 'application/json' };
    expect(plainHeaders(headers)).toBe(headers);
    expect(plainHeadersFromJson(JSON.stringify(headers))).toEqual(headers);
  });

  it('turns other values into their JSON text, and anything but an object into no headers', () => {
    expect(plainHeaders({ 'ce-id': '1', 'ce-datasize': 5, 'ce-flag': true, x: null })).toEqual({
      'ce-id': '1',
      'ce-datasize': '5',
      'ce-flag': 'true',
      x: 'null',
    });
    for (const value of [null, [], 'text', 5]) expect(plainHeaders(value)).toEqual({});
    expect(plainHeadersFromJson('{not json')).toEqual({});
    expect(plainHeadersFromJson('{}')).toEqual({});
  });
});

describe('BrokerLifecycle', () => {
  it('runs its steps around closing every subscription, once, and refuses calls with SB_CLOSED afterwards', async () => {
    const lifecycle = new BrokerLifecycle<Subscription>(brokerErrors({ engine: 'test' }));
    const events: string[] = [];
    const subscription = (name: string): Subscription => ({
      topic: 't',
      group: name,
      close: async () => {
        events.push(`close ${name}`);
        lifecycle.forget(subscriptions.find((s) => s.group === name)!);
      },
    });
    const subscriptions = [lifecycle.add(subscription('a')), lifecycle.add(subscription('b'))];
    expect([...lifecycle.subscriptions()]).toEqual(subscriptions);
    expect(lifecycle.size).toBe(2);
    lifecycle.assertOpen('publish');
    const steps = {
      before: async () => {
        events.push('before');
      },
      after: async () => {
        events.push('after');
      },
    };
    const first = lifecycle.close(steps);
    expect(lifecycle.close(steps)).toBe(first);
    await first;
    expect(events).toEqual(['before', 'close a', 'close b', 'after']);
    expect([...lifecycle.subscriptions()]).toEqual([]);
    expect(lifecycle.closed).toBe(true);
    let caught: unknown;
    try {
      lifecycle.assertOpen('publish');
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, 'SB_CLOSED')).toBe(true);
  });
});
