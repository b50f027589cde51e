import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { backoffDelay } from '@switchboard/core';
import { DeliveryTracker, idle } from '@switchboard/core/kit';
import type { Pool } from 'pg';
import type { BrokerTables } from './broker-sql.js';
import { type ClaimedRow, PostgresDelivery, type RowSettler } from './delivery.js';
import { postgresErrors } from './errors.js';

/** What a subscription needs from its broker. */
export interface GroupContext {
  readonly topic: string;
  readonly group: string;
  /** The group's number in the groups table. */
  readonly gid: number;
  readonly pool: Pool;
  readonly tables: BrokerTables;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly drainTimeoutMs: number;
  readonly report: (error: unknown, action: string) => void;
  /** A claim came back full: there is a backlog, worth planner statistics. */
  readonly onBacklog: () => void;
  readonly onClosed: (subscription: PostgresSubscription) => void;
}

interface Nack {
  readonly seq: string;
  readonly attempt: number;
  readonly delayMs: number;
}

/** Settles waiting for their statement, with one promise for all of them. */
class SettleBatch {
  readonly acks: string[] = [];
  readonly nacks: Nack[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // Each settle's caller gets the outcome through `done`; never unhandled here.
    this.done.catch(() => {});
  }
}

/** Lock conflicts worth one more try: deadlock_detected, serialization_failure. */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * One consumer of a group. It claims ready rows in batches (`FOR UPDATE SKIP LOCKED`, so consumers
 * never block each other) and leases them for `ackTimeoutMs`; a lease that runs out makes the row
 * ready again, which is how deliveries of crashed consumers come back. The settles of one turn of
 * the event loop go in one statement, and acks waiting when a claim leaves travel with it (one
 * statement, one commit for both). It sleeps until a NOTIFY for its topic, a freed half of its
 * slots, a nack coming due, or the fallback poll.
 *
 * While claims come back full (a backlog), the next claim starts after the last row of the one
 * before (`seq > cursor`) instead of walking again past the rows this consumer and others hold; a
 * claim that comes back short, a nack and an expired lease send it back to the head, so nothing
 * behind the cursor (a nacked row, a lease run out, a publish that committed late) waits longer
 * than one short claim.
 */
export class PostgresSubscription implements Subscription, RowSettler {
  readonly topic: string;
  readonly group: string;
  readonly #ctx: GroupContext;
  readonly #tracker: DeliveryTracker<PostgresDelivery>;
  /** Settles not sent yet; the one in flight is apart (one settle statement at a time). */
  #pending: SettleBatch | undefined;
  #flushing = false;
  #flushed: Promise<void> = Promise.resolve();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #released = new Set<Promise<void>>();
  #closed: Promise<void> | undefined;
  #loop: Promise<void> = Promise.resolve();
  #woken = false;
  #wake: (() => void) | undefined;
  #cursor = '0';

  constructor(ctx: GroupContext, handler: DeliveryHandler) {
    this.#ctx = ctx;
    this.topic = ctx.topic;
    this.group = ctx.group;
    this.#tracker = new DeliveryTracker({ maxInFlight: ctx.maxInFlight, ackTimeoutMs: ctx.ackTimeoutMs, handler, report: ctx.report });
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Called on a NOTIFY for this topic, a nack coming due, or close. */
  notify(): void {
    this.#woken = true;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  rescan(): void {
    this.#cursor = '0';
    this.notify();
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #run(): Promise<void> {
    let failures = 0;
    const tracker = this.#tracker;
    const { topic, gid, tables, ackTimeoutMs, maxInFlight, pollIntervalMs } = this.#ctx;
    // Refill in batches (half the slots), not a row at a time; a slot free for a poll interval is claimed anyway.
    const refill = Math.ceil(maxInFlight / 2);
    while (!tracker.closing) {
      await tracker.waitForCapacity(refill, pollIntervalMs);
      if (tracker.closing) break;
      this.#woken = false;
      const free = tracker.free;
      const cursor = this.#cursor;
      const acks = this.#takeAcks();
      let rows: ClaimedRow[];
      try {
        const values = [gid, cursor, free, ackTimeoutMs, acks?.acks ?? []];
        rows = (await this.#ctx.pool.query<ClaimedRow>({ ...tables.statements.claim, values })).rows;
        acks?.resolve();
        failures = 0;
      } catch (error) {
        acks?.reject(postgresErrors.toBrokerError(error, 'ack'));
        if (tracker.closing) break;
        this.#ctx.report(error, 'claim deliveries');
        failures += 1;
        await idle(backoffDelay(failures, { baseMs: 100, maxMs: 5000, jitter: 'equal' }));
        continue;
      }
      const full = rows.length === free;
      if (full) this.#ctx.onBacklog();
      // A full claim continues after its last row; a short one (or a rescan asked meanwhile) starts from the head.
      if (this.#cursor === cursor) this.#cursor = full ? rows[rows.length - 1]!.seq : '0';
      for (const row of rows) {
        const delivery = new PostgresDelivery(topic, row, this);
        if (tracker.closing) this.#track(delivery.release());
        else tracker.dispatch(delivery);
      }
      if (!full && cursor === '0' && !this.#woken) await this.#sleep(pollIntervalMs);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#tracker.closing || this.#woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.notify(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  settle(seq: string, attempt: number, delayMs: number | undefined): Promise<void> {
    this.#pending ??= new SettleBatch();
    const batch = this.#pending;
    if (delayMs === undefined) batch.acks.push(seq);
    else batch.nacks.push({ seq, attempt, delayMs });
    this.#scheduleFlush();
    return batch.done;
  }

  /** The waiting settles when they are acks only (a claim carries them), else undefined. */
  #takeAcks(): SettleBatch | undefined {
    const batch = this.#pending;
    if (batch === undefined || batch.nacks.length > 0) return undefined;
    this.#pending = undefined;
    return batch;
  }

  #track(done: Promise<void>): void {
    this.#released.add(done);
    const forget = () => this.#released.delete(done);
    done.then(forget, forget);
  }

  /** After the I/O of this turn (every settle made in it joins), unless a claim took them first. */
  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    this.#flushed = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flush());
  }

  /** The waiting acks and nacks in one statement (retried once on a lock conflict); one at a time. */
  async #flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = undefined;
    if (batch !== undefined) {
      const { pool, tables, gid } = this.#ctx;
      const { acks, nacks } = batch;
      const values = [gid, acks, nacks.map((n) => n.seq), nacks.map((n) => n.delayMs), nacks.map((n) => n.attempt)];
      for (let attempt = 1; ; attempt++) {
        try {
          await pool.query({ ...tables.statements.settle, values });
          batch.resolve();
          if (!this.#tracker.closing) for (const nack of nacks) this.#whenDue(nack.delayMs);
          break;
        } catch (error) {
          if (attempt >= 2 || !isTransient(error)) {
            batch.reject(postgresErrors.toBrokerError(error, acks.length > 0 ? 'ack' : 'nack'));
            break;
          }
        }
      }
    }
    this.#flushing = false;
    if (this.#pending !== undefined) this.#scheduleFlush();
  }

  /** A nacked row is behind the cursor: look from the head once it is due. */
  #whenDue(delayMs: number): void {
    if (delayMs === 0) {
      this.rescan();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.rescan();
    }, delayMs);
    this.#timers.add(timer);
  }

  async #close(): Promise<void> {
    // Stops handing out slots at once; handlers get the drain timeout, the rest is released.
    const drained = this.#tracker.close(this.#ctx.drainTimeoutMs);
    this.notify();
    await this.#loop;
    for (const timer of this.#timers) clearTimeout(timer);
    await drained;
    await Promise.allSettled([...this.#released]);
    // Settles made without being awaited are written before the broker may end its pool.
    while (this.#flushing) await this.#flushed;
    this.#ctx.onClosed(this);
  }
}
