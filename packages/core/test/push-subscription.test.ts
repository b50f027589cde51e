import { describe, expect, it } from 'vitest';
import type { Delivery } from '../src/index.js';
import { type DroppedDelivery, PushSubscription } from '../src/kit.js';

function delivery(id: string): Delivery {
  return { id, topic: 't', headers: {}, body: new Uint8Array(0), attempt: 1, ack: async () => {}, nack: async () => {} };
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

describe('PushSubscription', () => {
  it('runs at most maxInFlight handlers, queues the rest in order, drops past maxPending', async () => {
    const started: string[] = [];
    const gates = new Map<string, () => void>();
    const drops: DroppedDelivery[] = [];
    const subscription = new PushSubscription({
      topic: 't',
      group: 'g',
      maxInFlight: 2,
      maxPending: 2,
      drainTimeoutMs: 1000,
      handler: (d) => {
        started.push(d.id);
        const g = gate();
        gates.set(d.id, g.open);
        return g.promise;
      },
      onDrop: (drop) => drops.push(drop),
      stop: async () => {},
      onClosed: () => {},
    });
    for (const id of ['a', 'b', 'c', 'd', 'e']) subscription.push(delivery(id));
    expect(started).toEqual(['a', 'b']);
    expect(drops).toEqual([{ topic: 't', group: 'g', id: 'e', reason: 'overflow' }]);
    gates.get('b')?.();
    await Promise.resolve();
    await Promise.resolve();
    expect(started).toEqual(['a', 'b', 'c']);
    for (const open of gates.values()) open();
    await new Promise((resolve) => setImmediate(resolve));
    gates.get('d')?.();
    expect(started).toEqual(['a', 'b', 'c', 'd']);
    await subscription.close();
  });

  it('reports a failed handler as dropped and goes on', async () => {
    const drops: DroppedDelivery[] = [];
    const handled: string[] = [];
    const subscription = new PushSubscription({
      topic: 't',
      group: 'g',
      maxInFlight: 1,
      maxPending: 10,
      drainTimeoutMs: 1000,
      handler: async (d) => {
        handled.push(d.id);
        if (d.id === 'bad') throw new Error('boom');
      },
      onDrop: (drop) => drops.push(drop),
      stop: async () => {},
      onClosed: () => {},
    });
    for (const id of ['bad', 'good']) subscription.push(delivery(id));
    await new Promise((resolve) => setImmediate(resolve));
    expect(handled).toEqual(['bad', 'good']);
    expect(drops.map((d) => [d.id, d.reason, (d.error as Error).message])).toEqual([['bad', 'handler-failed', 'boom']]);
    await subscription.close();
  });

  it('close stops the source, waits for running handlers, drops what still waits after the drain timeout', async () => {
    const drops: DroppedDelivery[] = [];
    let stopped = false;
    let closed = false;
    const slow = gate();
    const subscription = new PushSubscription({
      topic: 't',
      group: 'g',
      maxInFlight: 1,
      maxPending: 10,
      drainTimeoutMs: 50,
      handler: () => slow.promise,
      onDrop: (drop) => drops.push(drop),
      stop: async () => {
        stopped = true;
      },
      onClosed: () => {
        closed = true;
      },
    });
    subscription.push(delivery('running'));
    subscription.push(delivery('waiting'));
    await subscription.close();
    expect(stopped).toBe(true);
    expect(closed).toBe(true);
    expect(drops.map((d) => [d.id, d.reason])).toEqual([['waiting', 'closed']]);
    subscription.push(delivery('late'));
    expect(drops.map((d) => d.id)).toEqual(['waiting', 'late']);
    slow.open();
  });
});
