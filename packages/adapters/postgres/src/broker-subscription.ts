import type { Delivery, DeliveryHandler, Headers, Subscription } from '@switchboard/core';
import { backoffDelay, SwitchboardError } from '@switchboard/core';
import { AckDeadlines, describeError, sleep } from '@switchboard/core/kit';
import type { Pool } from 'pg';
import type { BrokerTables } from './broker-sql.js';

/** What a subscription needs from its broker. */
export interface GroupContext {
  readonly topic: string;
  readonly group: string;
  readonly pool: Pool;
  readonly tables: BrokerTables;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly drainTimeoutMs: number;
  readonly report: (error: unknown, action: string) => void;
  /** A claim came back full: there is a backlog, worth planner statistics. */
  readonly onBacklog: () => void;
  readonly toError: (error: unknown, action: string) => SwitchboardError;
  readonly onClosed: (subscription: PostgresSubscription) => void;
}

interface ClaimedRow {
  readonly seq: string;
  readonly attempts: number;
  readonly id: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly key: string | null;
}

type Settlement = { readonly kind: 'ack' } | { readonly kind: 'nack'; readonly delayMs: number };

class PostgresDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly seq: string;
  expired = false;
  #settled: Promise<void> | undefined;
  readonly #owner: PostgresSubscription;

  constructor(owner: PostgresSubscription, topic: string, row: ClaimedRow) {
    this.#owner = owner;
    this.topic = topic;
    this.seq = row.seq;
    this.id = row.id;
    this.headers = row.headers;
    this.body = new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength);
    if (row.key !== null) this.key = row.key;
    this.attempt = row.attempts;
  }

  get settled(): boolean {
    return this.#settled !== undefined;
  }

  ack(): Promise<void> {
    this.#settled ??= this.#owner.settle(this, { kind: 'ack' });
    return this.#settled;
  }

  nack(delayMs = 0): Promise<void> {
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs) : 0;
    this.#settled ??= this.#owner.settle(this, { kind: 'nack', delayMs: delay });
    return this.#settled;
  }
}

interface PendingSettlement {
  readonly seq: string;
  readonly attempt: number;
  /** `undefined` for an ack, the delay of a nack otherwise. */
  readonly delayMs: number | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Lock conflicts worth one more try: deadlock_detected, serialization_failure. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * One consumer of a group. It claims visible deliveries in batches (`FOR UPDATE SKIP LOCKED`, so
 * consumers never block each other) and leases them for `ackTimeoutMs`; a lease that runs out makes
 * the row visible again, which is how deliveries of crashed consumers come back. It sleeps until a
 * NOTIFY for its topic, a local nack, or the fallback poll.
 */
export class PostgresSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #ctx: GroupContext;
  readonly #handler: DeliveryHandler;
  #closing = false;
  #closed: Promise<void> | undefined;
  #loop: Promise<void> = Promise.resolve();
  #slots = 0;
  #woken = false;
  #wake: (() => void) | undefined;
  #running = 0;
  #onIdle: (() => void) | undefined;
  readonly #unsettled = new Set<PostgresDelivery>();
  readonly #deadlines: AckDeadlines<PostgresDelivery>;
  readonly #settling = new Set<Promise<void>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #pending: PendingSettlement[] = [];
  #flushScheduled = false;
  #flushing = false;

  constructor(ctx: GroupContext, handler: DeliveryHandler) {
    this.#ctx = ctx;
    this.#handler = handler;
    this.topic = ctx.topic;
    this.group = ctx.group;
    this.#deadlines = new AckDeadlines(ctx.ackTimeoutMs, (delivery) => this.#expire(delivery));
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Called on a NOTIFY for this topic, a nack, a freed slot, or close. */
  notify(): void {
    this.#woken = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      const free = this.#ctx.maxInFlight - this.#slots;
      // Refill in batches: wait until half the slots are free (or none is busy) rather than claim one row at a time.
      if (free <= 0 || (this.#slots > 0 && free < Math.ceil(this.#ctx.maxInFlight / 2))) {
        this.#woken = false;
        await this.#sleep(undefined);
        continue;
      }
      this.#woken = false;
      let rows: ClaimedRow[];
      try {
        const { topic, group, tables, ackTimeoutMs } = this.#ctx;
        rows = (await this.#ctx.pool.query<ClaimedRow>({ ...tables.statements.claim, values: [topic, group, free, ackTimeoutMs] })).rows;
        failures = 0;
      } catch (error) {
        if (this.#closing) break;
        this.#ctx.report(error, 'claim deliveries');
        failures += 1;
        await sleep(backoffDelay(failures, { baseMs: 100, maxMs: 5000, jitter: 'equal' }));
        continue;
      }
      if (rows.length === free) this.#ctx.onBacklog();
      for (const row of rows) this.#dispatch(row);
      if (rows.length < free && !this.#woken) await this.#sleep(this.#ctx.pollIntervalMs);
    }
  }

  #sleep(ms: number | undefined): Promise<void> {
    if (this.#closing || this.#woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.notify(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #dispatch(row: ClaimedRow): void {
    const delivery = new PostgresDelivery(this, this.topic, row);
    if (this.#closing) {
      this.#track(this.#enqueue(delivery, 0));
      return;
    }
    this.#slots += 1;
    this.#unsettled.add(delivery);
    this.#deadlines.add(delivery);
    this.#running += 1;
    void this.#invoke(delivery);
  }

  async #invoke(delivery: PostgresDelivery): Promise<void> {
    try {
      await this.#handler(delivery);
    } catch {
      if (!delivery.settled) await delivery.nack(0).catch((error: unknown) => this.#ctx.report(error, 'nack after a handler failure'));
    } finally {
      this.#running -= 1;
      if (this.#running === 0) this.#onIdle?.();
    }
  }

  /** The lease ran out: give the slot back and look again, the row is visible to every consumer. */
  #expire(delivery: PostgresDelivery): void {
    if (delivery.settled || delivery.expired) return;
    delivery.expired = true;
    this.#releaseSlot();
  }

  settle(delivery: PostgresDelivery, settlement: Settlement): Promise<void> {
    this.#deadlines.delete(delivery);
    this.#unsettled.delete(delivery);
    if (!delivery.expired) this.#releaseSlot();
    return this.#track(this.#enqueue(delivery, settlement.kind === 'ack' ? undefined : settlement.delayMs));
  }

  #track(done: Promise<void>): Promise<void> {
    this.#settling.add(done);
    const forget = () => this.#settling.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** Queues an ack (`delayMs` undefined) or a nack for the next settle statement. */
  #enqueue(delivery: PostgresDelivery, delayMs: number | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ seq: delivery.seq, attempt: delivery.attempt, delayMs, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** One statement at a time; what is settled meanwhile goes into the next one. */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing || this.#pending.length === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  /** Acks and nacks of this turn of the event loop in one statement (acked messages no group holds go too). */
  async #flush(): Promise<void> {
    this.#flushing = true;
    const batch = this.#pending;
    this.#pending = [];
    const { pool, tables, topic, group } = this.#ctx;
    const acks: string[] = [];
    const nacks: PendingSettlement[] = [];
    for (const item of batch) {
      if (item.delayMs === undefined) acks.push(item.seq);
      else nacks.push(item);
    }
    const values = [topic, group, acks, nacks.map((n) => n.seq), nacks.map((n) => n.delayMs), nacks.map((n) => n.attempt)];
    let failure: unknown;
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        await pool.query({ ...tables.statements.settle, values });
        failure = undefined;
        break;
      } catch (error) {
        failure = error;
        if (!isTransient(error)) break;
      }
    }
    this.#flushing = false;
    this.#scheduleFlush();
    if (failure !== undefined) {
      const error = this.#ctx.toError(failure, acks.length > 0 ? 'ack' : 'nack');
      for (const item of batch) item.reject(error);
      return;
    }
    for (const item of batch) item.resolve();
    if (this.#closing) return;
    for (const nack of nacks) {
      if (nack.delayMs === 0) {
        this.notify();
        continue;
      }
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.notify();
      }, nack.delayMs);
      this.#timers.add(timer);
    }
  }

  #releaseSlot(): void {
    this.#slots -= 1;
    this.notify();
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.notify();
    await this.#loop;
    for (const timer of this.#timers) clearTimeout(timer);
    if (this.#running > 0) {
      const timeout = new AbortController();
      const idle = new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
      await Promise.race([idle, sleep(this.#ctx.drainTimeoutMs, timeout.signal).catch(() => {})]);
      timeout.abort();
    }
    this.#deadlines.clear();
    for (const delivery of [...this.#unsettled]) {
      delivery.nack(0).catch((error: unknown) => this.#ctx.report(error, 'release an unsettled delivery'));
    }
    await Promise.allSettled([...this.#settling]);
    this.#ctx.onClosed(this);
  }
}

export function asBrokerError(error: unknown, action: string): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `PostgreSQL could not ${action}: ${describeError(error)}`, cause: error });
}
