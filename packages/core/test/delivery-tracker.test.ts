import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, DeliveryHandler } from '../src/index.js';
import { DeliveryTracker, TrackedDelivery } from '../src/kit.js';

/** A delivery that records what the tracker made it do on the engine. */
class FakeDelivery extends TrackedDelivery {
  readonly calls: string[] = [];
  ackResult: Promise<void> = Promise.resolve();

  constructor(id: string) {
    super({ id, topic: 't', headers: {}, body: new Uint8Array(0), attempt: 1 });
  }

  protected settleAck(): Promise<void> {
    this.calls.push('ack');
    return this.ackResult;
  }

  protected settleNack(delayMs: number): Promise<void> {
    this.calls.push(`nack:${delayMs}`);
    return Promise.resolve();
  }

  protected override giveBack(): Promise<void> {
    this.calls.push('release');
    return Promise.resolve();
  }

  protected override onExpired(): void {
    this.calls.push('expired');
  }
}

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
  fail(error: unknown): void;
}

function gate(): Gate {
  let open!: () => void;
  let fail!: (error: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** A handler whose runs wait on a gate per delivery id, opened by the test. */
function gatedHandler(): { handler: DeliveryHandler; gates: Map<string, Gate>; seen: Delivery[] } {
  const gates = new Map<string, Gate>();
  const seen: Delivery[] = [];
  return {
    gates,
    seen,
    handler: (delivery) => {
      seen.push(delivery);
      const g = gate();
      gates.set(delivery.id, g);
      return g.promise;
    },
  };
}

/** Lets pending promise callbacks run (the tracker settles in `then` callbacks). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function tracker(options: { maxInFlight?: number; ackTimeoutMs?: number; handler: DeliveryHandler; reports?: string[] }) {
  return new DeliveryTracker<FakeDelivery>({
    maxInFlight: options.maxInFlight ?? 4,
    ackTimeoutMs: options.ackTimeoutMs ?? 1000,
    handler: options.handler,
    report: (_error, action) => options.reports?.push(action),
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('DeliveryTracker', () => {
  it('takes one slot per dispatched delivery and frees it when the delivery is settled', async () => {
    const { handler, gates } = gatedHandler();
    const t = tracker({ maxInFlight: 3, handler });
    const a = new FakeDelivery('a');
    const b = new FakeDelivery('b');
    t.dispatch(a);
    t.dispatch(b);
    expect(t.free).toBe(1);
    expect(t.unsettled).toBe(2);
    expect(t.running).toBe(2);
    expect(t.deliveries()).toEqual([a, b]);

    await a.ack();
    expect(a.calls).toEqual(['ack']);
    expect(t.free).toBe(2);
    expect(t.deliveries()).toEqual([b]);
    // The slot is free as soon as the delivery is settled, while its handler still runs.
    expect(t.running).toBe(2);
    gates.get('a')!.open();
    await flush();
    expect(t.running).toBe(1);

    await b.nack(250.2);
    expect(b.calls).toEqual(['nack:251']);
    expect(t.free).toBe(3);
    gates.get('b')!.open();
    await flush();
    expect(t.running).toBe(0);
  });

  it('expires a delivery at its ack deadline: the slot is freed, the handler keeps running, a late settle does nothing', async () => {
    const { handler, gates } = gatedHandler();
    const t = tracker({ maxInFlight: 1, ackTimeoutMs: 100, handler });
    const a = new FakeDelivery('a');
    t.dispatch(a);
    expect(t.free).toBe(0);

    vi.advanceTimersByTime(99);
    expect(a.expired).toBe(false);
    vi.advanceTimersByTime(50);
    expect(a.expired).toBe(true);
    expect(a.settled).toBe(true);
    expect(a.calls).toEqual(['expired']);
    expect(t.free).toBe(1);
    expect(t.unsettled).toBe(0);
    expect(t.running).toBe(1);

    await a.ack();
    await a.nack(0);
    await a.release();
    expect(a.calls).toEqual(['expired']);
    gates.get('a')!.open();
    await flush();
    expect(t.running).toBe(0);
  });

  it('deadlines run from dispatch: an earlier delivery expires first, a settled one never does', () => {
    const { handler } = gatedHandler();
    const t = tracker({ maxInFlight: 3, ackTimeoutMs: 100, handler });
    const a = new FakeDelivery('a');
    const b = new FakeDelivery('b');
    const c = new FakeDelivery('c');
    t.dispatch(a);
    vi.advanceTimersByTime(40);
    t.dispatch(b);
    t.dispatch(c);
    void c.ack();
    vi.advanceTimersByTime(70);
    expect([a.expired, b.expired, c.expired]).toEqual([true, false, false]);
    vi.advanceTimersByTime(40);
    expect([a.expired, b.expired, c.expired]).toEqual([true, true, false]);
    expect(c.calls).toEqual(['ack']);
    expect(t.free).toBe(3);
  });

  it('nacks (with no delay) a delivery whose handler threw or rejected without settling it', async () => {
    const reports: string[] = [];
    const t = tracker({
      handler: (delivery) => {
        if (delivery.id === 'sync') throw new Error('boom');
        return Promise.reject(new Error('async boom'));
      },
      reports,
    });
    const sync = new FakeDelivery('sync');
    const rejected = new FakeDelivery('async');
    t.dispatch(sync);
    t.dispatch(rejected);
    await flush();
    expect(sync.calls).toEqual(['nack:0']);
    expect(rejected.calls).toEqual(['nack:0']);
    expect(t.free).toBe(4);
    expect(t.running).toBe(0);
    expect(reports).toEqual([]);
  });

  it('reports a handler that threw after settling, and does not settle again', async () => {
    const reports: string[] = [];
    const t = tracker({
      handler: async (delivery) => {
        await delivery.ack();
        throw new Error('after ack');
      },
      reports,
    });
    const a = new FakeDelivery('a');
    t.dispatch(a);
    await flush();
    expect(a.calls).toEqual(['ack']);
    expect(reports).toEqual(['handler']);
  });

  it('settles once: repeated and mixed ack / nack / release calls reach the engine once and share the first promise', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ handler });
    const a = new FakeDelivery('a');
    let resolveAck!: () => void;
    a.ackResult = new Promise<void>((resolve) => {
      resolveAck = resolve;
    });
    t.dispatch(a);
    const first = a.ack();
    const second = a.ack();
    const third = a.nack(10);
    const fourth = a.release();
    expect(second).toBe(first);
    expect(third).toBe(first);
    expect(fourth).toBe(first);
    expect(a.calls).toEqual(['ack']);
    expect(t.free).toBe(4);
    resolveAck();
    await Promise.all([first, second, third, fourth]);
    expect(a.calls).toEqual(['ack']);
  });

  it('on close, waits for running handlers, then releases what they left unsettled', async () => {
    const { handler, gates } = gatedHandler();
    const t = tracker({ handler });
    const acked = new FakeDelivery('acked');
    const left = new FakeDelivery('left');
    t.dispatch(acked);
    t.dispatch(left);
    let closed = false;
    const closing = t.close(10_000).then(() => {
      closed = true;
    });
    expect(t.closing).toBe(true);
    expect(t.free).toBe(0);
    await flush();
    expect(closed).toBe(false);
    expect(left.calls).toEqual([]);

    await acked.ack();
    gates.get('acked')!.open();
    await flush();
    expect(closed).toBe(false);
    // The last handler returns without settling: only now is its delivery released.
    gates.get('left')!.open();
    await closing;
    expect(acked.calls).toEqual(['ack']);
    expect(left.calls).toEqual(['release']);
    expect(t.unsettled).toBe(0);
  });

  it('on close, releases what is unsettled once the drain timeout passes, even with handlers still running', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ handler });
    const stuck = new FakeDelivery('stuck');
    t.dispatch(stuck);
    let closed = false;
    const closing = t.close(500).then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(499);
    expect(closed).toBe(false);
    expect(stuck.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    expect(stuck.calls).toEqual(['release']);
    expect(t.running).toBe(1);
  });

  it('on close with nothing running, releases at once and stops expiring deliveries', async () => {
    const t = tracker({ ackTimeoutMs: 100, handler: async () => {} });
    const a = new FakeDelivery('a');
    t.dispatch(a);
    await flush();
    await t.close(10_000);
    expect(a.calls).toEqual(['release']);
    vi.advanceTimersByTime(1000);
    expect(a.calls).toEqual(['release']);
    expect(a.expired).toBe(false);
  });

  it('waitForCapacity(min) resolves once min slots are free, at once when they already are', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ maxInFlight: 4, handler });
    const ds = ['a', 'b', 'c', 'd'].map((id) => new FakeDelivery(id));
    for (const d of ds) t.dispatch(d);
    let ready = false;
    const waiting = t.waitForCapacity(2).then(() => {
      ready = true;
    });
    await ds[0]!.ack();
    await flush();
    expect(ready).toBe(false);
    await ds[1]!.nack();
    await waiting;
    expect(ready).toBe(true);
    expect(t.free).toBe(2);

    let immediate = false;
    await t.waitForCapacity(2).then(() => {
      immediate = true;
    });
    expect(immediate).toBe(true);
  });

  it('waitForCapacity clamps min to maxInFlight and to at least 1', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ maxInFlight: 2, handler });
    const a = new FakeDelivery('a');
    const b = new FakeDelivery('b');
    t.dispatch(a);
    t.dispatch(b);
    let ready = false;
    const waiting = t.waitForCapacity(10).then(() => {
      ready = true;
    });
    await a.ack();
    await flush();
    expect(ready).toBe(false);
    await b.ack();
    await waiting;
    expect(t.free).toBe(2);
    await t.waitForCapacity(0);
  });

  it('waitForCapacity(min, orAfterMs) resolves with fewer free slots once orAfterMs passed', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ maxInFlight: 4, handler });
    const ds = ['a', 'b', 'c', 'd'].map((id) => new FakeDelivery(id));
    for (const d of ds) t.dispatch(d);
    await ds[0]!.ack();
    let ready = false;
    const waiting = t.waitForCapacity(2, 5).then(() => {
      ready = true;
    });
    await vi.advanceTimersByTimeAsync(4);
    expect(ready).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await waiting;
    expect(ready).toBe(true);
    expect(t.free).toBe(1);
  });

  it('waitForCapacity(min, orAfterMs) with no slot free when orAfterMs passes resolves at the first free slot', async () => {
    const { handler } = gatedHandler();
    const t = tracker({ maxInFlight: 4, handler });
    const ds = ['a', 'b', 'c', 'd'].map((id) => new FakeDelivery(id));
    for (const d of ds) t.dispatch(d);
    let ready = false;
    const waiting = t.waitForCapacity(2, 5).then(() => {
      ready = true;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(ready).toBe(false);
    await ds[2]!.ack();
    await waiting;
    expect(ready).toBe(true);
    expect(t.free).toBe(1);
  });

  it('waitForCapacity resolves for every waiter when the tracker closes', async () => {
    const { handler, gates } = gatedHandler();
    const t = tracker({ maxInFlight: 1, handler });
    const a = new FakeDelivery('a');
    t.dispatch(a);
    const waiters = [t.waitForCapacity(1), t.waitForCapacity(1, 5)];
    const closing = t.close(10_000);
    await Promise.all(waiters);
    expect(t.free).toBe(0);
    await t.waitForCapacity(1);
    gates.get('a')!.open();
    await closing;
    expect(a.calls).toEqual(['release']);
  });
});
