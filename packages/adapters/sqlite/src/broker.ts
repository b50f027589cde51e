import { type FSWatcher, watch } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, isSwitchboardError } from '@switchboard/core';
import { BrokerLifecycle, brokerErrors, queueCapabilities, resolveSubscribeOptions } from '@switchboard/core/kit';
import type Database from 'better-sqlite3';
import { type BrokerStatements, type ClaimedRow, prepareBrokerSchema, type QueueRow } from './broker-schema.js';
import { openDatabase } from './database.js';
import type { SettleQueue } from './delivery.js';
import { type ResolvedSqliteBrokerOptions, resolveSqliteBrokerOptions, type SqliteBrokerOptions } from './options.js';
import { SqliteSubscription } from './subscription.js';

export type { SqliteBrokerOptions } from './options.js';

const RESOLVED: Promise<void> = Promise.resolve();

/** Brokers of this process by database file, so a publish wakes the others' consumers without waiting for a poll. */
const brokersByFile = new Map<string, Set<SqliteBroker>>();

const errors = brokerErrors({ engine: 'SQLite' });

/** SQLite's own errors (a lock timeout, I/O) are `SB_BROKER_UNAVAILABLE`; anything else is a bug and passes through. */
function toBrokerError(error: unknown, action: string): unknown {
  if (isSwitchboardError(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? errors.toBrokerError(error, action) : error;
}

interface PendingPublish {
  readonly messages: readonly OutgoingMessage[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** The settles of one turn: the acks in one DELETE, nacks one by one, one promise for all. */
class SettleBatch {
  readonly acks: number[] = [];
  readonly nacks: [visibleAt: number, seq: number, attempt: number][] = [];
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A failed batch is also reported through each settle's own promise; never unhandled here.
    this.promise.catch(() => {});
  }

  write(sql: BrokerStatements): void {
    if (this.acks.length > 0) sql.ack(JSON.stringify(this.acks));
    for (const nack of this.nacks) sql.nack.run(...nack);
  }
}

class SqliteBroker implements Broker, SettleQueue {
  readonly name = 'sqlite';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #options: ResolvedSqliteBrokerOptions;
  readonly #file: string;
  readonly #db: Database.Database;
  readonly #sql: BrokerStatements;
  readonly #lifecycle = new BrokerLifecycle<SqliteSubscription>(errors);
  #publishes: PendingPublish[] = [];
  #settles: SettleBatch | undefined;
  #tickScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #idleMs = 1;
  /** When delayed nacks of this process become ready, so a poll happens right then. */
  #nackDue: number[] = [];
  #watcher: FSWatcher | undefined;
  #dbClosed = false;
  /** Resolved at the end of the next turn (used by close to flush). */
  #turnWaiters: (() => void)[] = [];

  constructor(options: SqliteBrokerOptions) {
    this.#options = resolveSqliteBrokerOptions(options);
    this.#file = resolvePath(this.#options.path);
    this.capabilities = queueCapabilities(this.#options.maxMessageBytes);
    this.#db = openDatabase(this.#file, options);
    try {
      this.#sql = prepareBrokerSchema(this.#db, this.#options.prefix);
    } catch (error) {
      this.#db.close();
      throw toBrokerError(error, 'create the broker tables');
    }
    let peers = brokersByFile.get(this.#file);
    if (peers === undefined) {
      peers = new Set();
      brokersByFile.set(this.#file, peers);
    }
    peers.add(this);
    if (this.#options.watchWal) this.#watchWal();
  }

  #watchWal(): void {
    try {
      this.#watcher = watch(`${this.#file}-wal`, { persistent: false }, () => this.wake());
      this.#watcher.on('error', () => {
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch {
      // No WAL file to watch (yet): polling alone finds the work.
      this.#watcher = undefined;
    }
  }

  publish(message: OutgoingMessage): Promise<void> {
    return this.publishBatch([message]);
  }

  publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    try {
      this.#lifecycle.checkPublish(messages, this.capabilities.maxMessageBytes);
    } catch (error) {
      return Promise.reject(error);
    }
    if (messages.length === 0) return RESOLVED;
    return new Promise<void>((resolve, reject) => {
      this.#publishes.push({ messages, resolve, reject });
      this.#scheduleTick();
    });
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#groupId(topic, group);
  }

  /** Rows the group has not acknowledged (ready or leased). */
  async pending(topic: string, group: string): Promise<number | undefined> {
    if (this.#dbClosed) return undefined;
    const row = this.#sql.groupId.get(topic, group);
    return row === undefined ? undefined : this.#sql.pending.get(row.gid)!.n;
  }

  #groupId(topic: string, group: string): number {
    this.#lifecycle.assertOpen('declareGroup');
    try {
      this.#sql.declareGroup.run(topic, group);
      return this.#sql.groupId.get(topic, group)!.gid;
    } catch (error) {
      throw toBrokerError(error, `declare group ${group}`);
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#lifecycle.assertOpen('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
    const subscription = new SqliteSubscription(
      {
        topic: options.topic,
        group: options.group,
        gid: this.#groupId(options.topic, options.group),
        maxInFlight,
        ackTimeoutMs: Math.ceil(ackTimeoutMs),
        drainTimeoutMs: this.#options.drainTimeoutMs,
        broker: this,
        onClosed: (closed) => this.#lifecycle.forget(closed),
      },
      handler,
    );
    this.#lifecycle.add(subscription);
    this.wake();
    return subscription;
  }

  /** A delivery was settled: written with the next transaction; resolves once committed. */
  settle(seq: number, attempt: number, visibleAt: number | undefined): Promise<void> {
    if (this.#dbClosed) return RESOLVED;
    this.#settles ??= new SettleBatch();
    if (visibleAt === undefined) {
      this.#settles.acks.push(seq);
    } else {
      this.#settles.nacks.push([visibleAt, seq, attempt]);
      if (visibleAt > Date.now()) this.#nackDue.push(visibleAt);
    }
    this.#scheduleTick();
    return this.#settles.promise;
  }

  /** Something may be ready: look now instead of at the next poll. */
  wake(): void {
    this.#idleMs = 1;
    this.#scheduleTick();
  }

  #scheduleTick(): void {
    if (this.#tickScheduled || this.#dbClosed) return;
    this.#tickScheduled = true;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    setImmediate(this.#tick);
  }

  /**
   * One turn of the broker: in a single write transaction, inserts the pending publishes, applies
   * the pending acks and nacks, and claims ready rows for every subscription with free slots. A
   * turn with nothing to write first checks for ready rows with a read, so idle consumers never
   * take the write lock.
   */
  readonly #tick = (): void => {
    this.#tickScheduled = false;
    if (this.#dbClosed) return;
    this.#turn();
    const waiters = this.#turnWaiters;
    this.#turnWaiters = [];
    for (const resolve of waiters) resolve();
  };

  #turn(): void {
    const now = Date.now();
    const publishes = this.#publishes;
    const settles = this.#settles;
    this.#publishes = [];
    this.#settles = undefined;
    if (this.#nackDue.length > 0) {
      const waiting = this.#nackDue.filter((due) => due > now);
      // A nacked row came due: it is behind the claim cursors.
      if (waiting.length < this.#nackDue.length) for (const subscription of this.#lifecycle.subscriptions()) subscription.rescan();
      this.#nackDue = waiting;
    }
    const { claimBatch } = this.#options;

    const claimers: SqliteSubscription[] = [];
    for (const subscription of this.#lifecycle.subscriptions()) if (subscription.free > 0) claimers.push(subscription);
    const writes = publishes.length > 0 || settles !== undefined;
    let picked: ClaimedRow[][] = [];
    let claims: ClaimedRow[][] = [];
    let published = false;
    try {
      // Ready rows are read first, outside the write lock (readers never block the writer), and
      // leased in the transaction, which keeps the lock only for writing.
      picked = claimers.map((s) => this.#sql.pick({ gid: s.gid, after: s.cursor, now, limit: Math.min(claimBatch, s.free) }));
      if (writes || picked.some((rows) => rows.length > 0)) {
        this.#db
          .transaction(() => {
            published = this.#insert(publishes);
            settles?.write(this.#sql);
            claims = claimers.map((s, i) => this.#sql.lease(picked[i]!, now, now + s.ackTimeoutMs));
          })
          .immediate();
      }
    } catch (error) {
      const failure = toBrokerError(error, 'write a transaction');
      for (const publish of publishes) publish.reject(failure);
      settles?.reject(failure);
      this.#scheduleNext(false, false);
      return;
    }
    for (const publish of publishes) publish.resolve();
    settles?.resolve();
    if (published && this.#options.notifyInProcess) {
      for (const peer of brokersByFile.get(this.#file) ?? []) if (peer !== this) peer.wake();
    }
    let claimed = false;
    let full = false;
    for (const [i, subscription] of claimers.entries()) {
      const rows = claims[i] ?? [];
      subscription.claimed(rows, picked[i]!.length === Math.min(claimBatch, subscription.free));
      if (rows.length === 0) continue;
      claimed = true;
      if (picked[i]!.length >= claimBatch) full = true;
    }
    this.#scheduleNext(claimed || writes, full);
  }

  /** One row per message and group declared now, in publish order; true when anything was written. */
  #insert(publishes: PendingPublish[]): boolean {
    if (publishes.length === 0) return false;
    const rows: QueueRow[] = [];
    const groupsByTopic = new Map<string, number[]>();
    for (const { messages } of publishes) {
      for (const message of messages) {
        let gids = groupsByTopic.get(message.topic);
        if (gids === undefined) {
          gids = this.#sql.groupsOfTopic.all(message.topic).map((row) => row.gid);
          groupsByTopic.set(message.topic, gids);
        }
        if (gids.length === 0) continue;
        const headers = JSON.stringify(message.headers);
        const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
        for (const gid of gids) rows.push([gid, message.id, headers, body, message.key ?? null]);
      }
    }
    this.#sql.insert(rows);
    return rows.length > 0;
  }

  #scheduleNext(active: boolean, more: boolean): void {
    if (this.#dbClosed || this.#tickScheduled) return;
    if (more) {
      this.#scheduleTick();
      return;
    }
    if (this.#lifecycle.size === 0) return;
    this.#idleMs = active ? 1 : Math.min(this.#idleMs * 2, this.#options.pollIntervalMs);
    const now = Date.now();
    let wakeAt = now + this.#idleMs;
    for (const due of this.#nackDue) wakeAt = Math.min(wakeAt, due);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#onTimer, Math.max(1, wakeAt - now));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#scheduleTick();
  };

  close(): Promise<void> {
    return this.#lifecycle.close({ after: () => this.#teardown() });
  }

  async #teardown(): Promise<void> {
    // Write what is still pending (publishes accepted before close, last settles).
    while (this.#publishes.length > 0 || this.#settles !== undefined) {
      const turn = new Promise<void>((resolve) => this.#turnWaiters.push(resolve));
      this.#scheduleTick();
      await turn;
    }
    this.#dbClosed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    const peers = brokersByFile.get(this.#file);
    peers?.delete(this);
    if (peers?.size === 0) brokersByFile.delete(this.#file);
    this.#db.close();
  }
}

/**
 * A durable broker in one SQLite file (WAL). Several processes on one host publish and consume
 * through the same file; a publish resolves once its transaction committed. Consumers claim
 * batches under a lease of `ackTimeoutMs`, acks are written in batches, and rows are deleted once
 * acked, so the file does not grow with the traffic.
 */
export function createSqliteBroker(options: SqliteBrokerOptions): Broker {
  return new SqliteBroker(options);
}
