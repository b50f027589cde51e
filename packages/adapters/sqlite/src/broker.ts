import { type FSWatcher, watch } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type {
  Broker,
  BrokerCapabilities,
  Delivery,
  DeliveryHandler,
  Headers,
  OutgoingMessage,
  SubscribeOptions,
  Subscription,
} from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import { resolveSubscribeOptions } from '@switchboard/core/kit';
import type Database from 'better-sqlite3';
import { type BrokerStatements, type ClaimedRow, prepareBrokerSchema } from './broker-schema.js';
import { type OpenDatabaseOptions, openDatabase } from './database.js';

export interface SqliteBrokerOptions extends OpenDatabaseOptions {
  /** The database file. Every process that opens the same file shares its topics and groups. */
  readonly path: string;
  /** Longest pause between two looks for work when idle, in ms (polling backs off from 1 ms to this). Default 50. */
  readonly pollIntervalMs?: number;
  /** Most rows one claim takes for one subscription. Default 256. */
  readonly claimBatch?: number;
  /** Largest body accepted, in bytes. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** How long `close` waits for running handlers before releasing their deliveries, in ms. Default 10 000. */
  readonly drainTimeoutMs?: number;
  /** Prefix of the broker's tables (letters, digits, `_`). Default `sb_broker_`. */
  readonly tablePrefix?: string;
  /** Watch the WAL file so commits of other processes wake consumers at once. Default true. */
  readonly watchWal?: boolean;
  /** Wake consumers of other brokers on the same file in this process right after a publish. Default true. */
  readonly notifyInProcess?: boolean;
}

const EMPTY_HEADERS: Headers = Object.freeze({});
const RESOLVED: Promise<void> = Promise.resolve();

/** Brokers of this process by database file, so a publish wakes the others' consumers without waiting for a poll. */
const brokersByFile = new Map<string, Set<SqliteBroker>>();

interface PendingPublish {
  readonly messages: readonly OutgoingMessage[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface PendingSettle {
  readonly delivery: SqliteDelivery;
  /** `undefined` for an ack; the time the row becomes ready again for a nack or release. */
  readonly visibleAt: number | undefined;
}

class SettleBatch {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (error: unknown) => void;
  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A rejected batch is also reported through each ack's own promise; never unhandled here.
    this.promise.catch(() => {});
  }
}

function toBrokerError(error: unknown): unknown {
  if (error instanceof SwitchboardError) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `sqlite: ${code}`, cause: error });
  }
  return error;
}

function parseHeaders(text: string): Headers {
  return text === '{}' ? EMPTY_HEADERS : (JSON.parse(text) as Headers);
}

/** The shared checks and defaults, with the ack timeout in whole milliseconds (SQLite stores integers). */
function subscribeLimits(options: SubscribeOptions): { maxInFlight: number; ackTimeoutMs: number } {
  const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
  return { maxInFlight, ackTimeoutMs: Math.ceil(ackTimeoutMs) };
}

class SqliteDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly seq: number;
  readonly deadline: number;
  readonly #subscription: SqliteSubscription;
  done = false;

  constructor(row: ClaimedRow, subscription: SqliteSubscription, deadline: number) {
    this.id = row.id;
    this.topic = subscription.topic;
    this.headers = parseHeaders(row.headers);
    this.body = row.body;
    if (row.key !== null) this.key = row.key;
    this.attempt = row.attempt;
    this.seq = row.seq;
    this.deadline = deadline;
    this.#subscription = subscription;
  }

  ack(): Promise<void> {
    return this.done ? RESOLVED : this.#subscription.settle(this, undefined);
  }

  nack(delayMs = 0): Promise<void> {
    return this.done ? RESOLVED : this.#subscription.settle(this, Date.now() + Math.max(0, delayMs));
  }
}

class SqliteSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly gid: number;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly #broker: SqliteBroker;
  readonly #handler: DeliveryHandler;
  /** Deliveries handed out and not settled, in hand-out order (which is deadline order). */
  readonly #unsettled = new Set<SqliteDelivery>();
  #running = 0;
  #idle: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    broker: SqliteBroker,
    topic: string,
    group: string,
    gid: number,
    limits: { maxInFlight: number; ackTimeoutMs: number },
    handler: DeliveryHandler,
  ) {
    this.#broker = broker;
    this.topic = topic;
    this.group = group;
    this.gid = gid;
    this.maxInFlight = limits.maxInFlight;
    this.ackTimeoutMs = limits.ackTimeoutMs;
    this.#handler = handler;
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Free slots, after forgetting deliveries whose lease ran out (their rows are ready for anyone again). */
  capacity(now: number): number {
    for (const delivery of this.#unsettled) {
      if (delivery.deadline > now) break;
      delivery.done = true;
      this.#unsettled.delete(delivery);
    }
    return this.#closing === undefined ? this.maxInFlight - this.#unsettled.size : 0;
  }

  /** The earliest lease end among unsettled deliveries. */
  nextDeadline(): number | undefined {
    for (const delivery of this.#unsettled) return delivery.deadline;
    return undefined;
  }

  dispatch(rows: ClaimedRow[], now: number): void {
    if (rows.length > 1) rows.sort((a, b) => a.seq - b.seq);
    const deadline = now + this.ackTimeoutMs;
    for (const row of rows) {
      const delivery = new SqliteDelivery(row, this, deadline);
      this.#unsettled.add(delivery);
      this.#running += 1;
      let result: Promise<void>;
      try {
        result = this.#handler(delivery);
      } catch (error) {
        result = Promise.reject(error);
      }
      result.then(this.#handlerDone, () => {
        if (!delivery.done) void this.settle(delivery, Date.now()).catch(() => {});
        this.#handlerDone();
      });
    }
  }

  settle(delivery: SqliteDelivery, visibleAt: number | undefined): Promise<void> {
    delivery.done = true;
    this.#unsettled.delete(delivery);
    return this.#broker.enqueueSettle({ delivery, visibleAt });
  }

  readonly #handlerDone = (): void => {
    this.#running -= 1;
    if (this.#running === 0) this.#idle?.();
  };

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#running > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, this.#broker.drainTimeoutMs);
      });
      clearTimeout(timer);
    }
    const now = Date.now();
    const released = [...this.#unsettled].map((delivery) => this.settle(delivery, now));
    await Promise.all(released).catch(() => {
      // Not released: the leases run out and the rows come back anyway.
    });
    this.#broker.forget(this);
  }
}

class SqliteBroker implements Broker {
  readonly name = 'sqlite';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly drainTimeoutMs: number;
  readonly #file: string;
  readonly #db: Database.Database;
  readonly #sql: BrokerStatements;
  readonly #pollIntervalMs: number;
  readonly #claimBatch: number;
  readonly #notifyInProcess: boolean;
  readonly #subscriptions = new Set<SqliteSubscription>();
  #publishes: PendingPublish[] = [];
  #settles: PendingSettle[] = [];
  #settleBatch: SettleBatch | undefined;
  #tickScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #idleMs = 1;
  /** When delayed nacks of this process become ready, so a poll happens right then. */
  #nackDue: number[] = [];
  #watcher: FSWatcher | undefined;
  #closing: Promise<void> | undefined;
  #dbClosed = false;
  /** Resolved at the end of the next turn (used by close to flush). */
  #turnWaiters: (() => void)[] = [];

  constructor(options: SqliteBrokerOptions) {
    const pollIntervalMs = options.pollIntervalMs ?? 50;
    const claimBatch = options.claimBatch ?? 256;
    if (!(pollIntervalMs >= 1))
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `pollIntervalMs must be >= 1, got ${pollIntervalMs}` });
    if (!Number.isInteger(claimBatch) || claimBatch < 1) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `claimBatch must be a positive integer, got ${claimBatch}` });
    }
    this.#file = resolvePath(options.path);
    this.#pollIntervalMs = pollIntervalMs;
    this.#claimBatch = claimBatch;
    this.#notifyInProcess = options.notifyInProcess ?? true;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: true,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: true,
      publishDeduplication: false,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
    };
    this.#db = openDatabase(this.#file, options);
    try {
      this.#sql = prepareBrokerSchema(this.#db, options.tablePrefix ?? 'sb_broker_');
    } catch (error) {
      this.#db.close();
      throw toBrokerError(error);
    }
    let peers = brokersByFile.get(this.#file);
    if (peers === undefined) {
      peers = new Set();
      brokersByFile.set(this.#file, peers);
    }
    peers.add(this);
    if (options.watchWal ?? true) this.#watchWal();
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
    if (this.#closing !== undefined) return Promise.reject(new SwitchboardError('SB_CLOSED', { detail: 'the sqlite broker is closed' }));
    for (const message of messages) {
      if (message.body.byteLength > this.capabilities.maxMessageBytes) {
        return Promise.reject(
          new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
            detail: `${message.body.byteLength} bytes; this sqlite broker takes at most ${this.capabilities.maxMessageBytes}`,
          }),
        );
      }
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

  #groupId(topic: string, group: string): number {
    if (this.#closing !== undefined) throw new SwitchboardError('SB_CLOSED', { detail: 'the sqlite broker is closed' });
    try {
      this.#sql.declareGroup.run(topic, group);
      return this.#sql.groupId.get(topic, group)!.gid;
    } catch (error) {
      throw toBrokerError(error);
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    const limits = subscribeLimits(options);
    const gid = this.#groupId(options.topic, options.group);
    const subscription = new SqliteSubscription(this, options.topic, options.group, gid, limits, handler);
    this.#subscriptions.add(subscription);
    this.wake();
    return subscription;
  }

  /** A delivery was settled: write it with the next transaction; resolves once committed. */
  enqueueSettle(settle: PendingSettle): Promise<void> {
    if (this.#dbClosed) return RESOLVED;
    this.#settles.push(settle);
    if (settle.visibleAt !== undefined && settle.visibleAt > Date.now()) this.#nackDue.push(settle.visibleAt);
    this.#settleBatch ??= new SettleBatch();
    this.#scheduleTick();
    return this.#settleBatch.promise;
  }

  forget(subscription: SqliteSubscription): void {
    this.#subscriptions.delete(subscription);
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
    const settleBatch = this.#settleBatch;
    this.#publishes = [];
    this.#settles = [];
    this.#settleBatch = undefined;
    if (this.#nackDue.length > 0) this.#nackDue = this.#nackDue.filter((due) => due > now);

    let claimers: SqliteSubscription[] = [];
    for (const subscription of this.#subscriptions) if (subscription.capacity(now) > 0) claimers.push(subscription);
    const writes = publishes.length > 0 || settles.length > 0;
    let claims: ClaimedRow[][] = [];
    let published = false;
    try {
      if (!writes) claimers = claimers.filter((s) => this.#sql.ready.get(s.gid, now) !== undefined);
      if (writes || claimers.length > 0) {
        this.#db
          .transaction(() => {
            published = this.#insert(publishes, now);
            for (const { delivery, visibleAt } of settles) {
              if (visibleAt === undefined) this.#sql.ack.run(delivery.seq, delivery.attempt);
              else this.#sql.nack.run(visibleAt, delivery.seq, delivery.attempt);
            }
            claims = claimers.map((s) =>
              this.#sql.claim.all({ gid: s.gid, now, until: now + s.ackTimeoutMs, limit: Math.min(this.#claimBatch, s.capacity(now)) }),
            );
          })
          .immediate();
      }
    } catch (error) {
      const failure = toBrokerError(error);
      for (const publish of publishes) publish.reject(failure);
      settleBatch?.reject(failure);
      this.#scheduleNext(false, false);
      return;
    }
    for (const publish of publishes) publish.resolve();
    settleBatch?.resolve();
    if (published && this.#notifyInProcess) {
      for (const peer of brokersByFile.get(this.#file) ?? []) if (peer !== this) peer.wake();
    }
    let claimed = false;
    let full = false;
    for (const [i, rows] of claims.entries()) {
      if (rows.length === 0) continue;
      claimed = true;
      const subscription = claimers[i]!;
      if (rows.length >= this.#claimBatch) full = true;
      subscription.dispatch(rows, now);
    }
    this.#scheduleNext(claimed || writes, full);
  }

  #insert(publishes: PendingPublish[], now: number): boolean {
    let inserted = false;
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
        for (const gid of gids) this.#sql.insert.run(gid, message.id, headers, body, message.key ?? null, now);
        inserted = true;
      }
    }
    return inserted;
  }

  #scheduleNext(active: boolean, more: boolean): void {
    if (this.#dbClosed || this.#tickScheduled) return;
    if (more) {
      this.#scheduleTick();
      return;
    }
    if (this.#subscriptions.size === 0) return;
    this.#idleMs = active ? 1 : Math.min(this.#idleMs * 2, this.#pollIntervalMs);
    const now = Date.now();
    let wakeAt = now + this.#idleMs;
    for (const due of this.#nackDue) wakeAt = Math.min(wakeAt, due);
    for (const subscription of this.#subscriptions) {
      const deadline = subscription.nextDeadline();
      if (deadline !== undefined) wakeAt = Math.min(wakeAt, deadline);
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#onTimer, Math.max(1, wakeAt - now));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#scheduleTick();
  };

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    // Write what is still pending (publishes accepted before close, last settles).
    while (this.#publishes.length > 0 || this.#settles.length > 0) {
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
