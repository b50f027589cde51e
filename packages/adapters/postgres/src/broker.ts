import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import type { Pool, PoolConfig } from 'pg';
import pg from 'pg';
import { NotificationListener } from './broker-listener.js';
import { PublishPipeline } from './broker-publisher.js';
import type { BrokerTables } from './broker-sql.js';
import { brokerTables, isIdentifier } from './broker-sql.js';
import { asBrokerError, PostgresSubscription } from './broker-subscription.js';

export interface PostgresBrokerOptions {
  /** e.g. `postgres://user@host:5432/db`. Ignored when `pool` is given. */
  readonly connectionString?: string;
  /** Extra `pg.Pool` settings for the pool the broker creates itself. */
  readonly poolConfig?: PoolConfig;
  /**
   * An existing pool. The broker holds one of its connections for LISTEN while it has
   * subscriptions, and does not end the pool on `close()`: its owner does.
   */
  readonly pool?: Pool;
  /** Schema of the broker's tables, created if missing. Default `public`. */
  readonly schema?: string;
  /** Prefix of the broker's table names. Default `switchboard_`. */
  readonly tablePrefix?: string;
  /** Largest body accepted by `publish`, in bytes. Default 1 MiB, at most 256 MiB. */
  readonly maxMessageBytes?: number;
  /** Fallback poll of a consumer that got no notification (delayed nacks, expired leases). Default 500 ms. */
  readonly pollIntervalMs?: number;
  /** How long `close()` waits for running handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** How often orphaned message rows are swept while the broker has subscriptions. Default 60 000 ms. */
  readonly sweepIntervalMs?: number;
  /**
   * INSERT statements of coalesced publishes in flight at once. Publishes of one event-loop turn,
   * and those that arrive while these are busy, share one statement (one commit). Default 4.
   */
  readonly publishConcurrency?: number;
  /** Receives errors of the background loops (claims, LISTEN, sweeps); they are retried, never thrown. */
  readonly onError?: (error: SwitchboardError) => void;
}

const MIB = 1024 * 1024;
const MAX_BYTES = 256 * MIB;
/** A coalesced publish statement takes more calls while under both limits. */
const STATEMENT_MESSAGES = 1000;
const STATEMENT_BYTES = 4 * MIB;

/** SQLSTATE class 22 (data exception): the server refused a value, not the connection or the statement. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

function positiveInteger(value: number | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be an integer between 1 and ${max}, got ${value}` });
  }
  return value;
}

function checkName(kind: string, value: string): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200 || value.includes('\0')) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${kind} must be 1 to 200 characters` });
  }
}

/**
 * A broker on PostgreSQL, for teams that run nothing else: a table of messages, a table of
 * deliveries per group claimed with `FOR UPDATE SKIP LOCKED` under a lease, and LISTEN/NOTIFY to
 * wake consumers. See `docs/adapters/postgres.md`.
 */
export class PostgresBroker implements Broker {
  readonly name = 'postgres';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  readonly #tables: BrokerTables;
  readonly #options: PostgresBrokerOptions;
  readonly #pollIntervalMs: number;
  readonly #drainTimeoutMs: number;
  readonly #sweepIntervalMs: number;
  readonly #subscriptions = new Set<PostgresSubscription>();
  readonly #publisher: PublishPipeline;
  #listener: NotificationListener | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #schema: Promise<void> | undefined;
  #ready = false;
  #analyzed = false;
  #closed: Promise<void> | undefined;

  constructor(options: PostgresBrokerOptions = {}) {
    const schema = options.schema ?? 'public';
    const prefix = options.tablePrefix ?? 'switchboard_';
    if (!isIdentifier(schema) || !(isIdentifier(prefix) || prefix === '')) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: 'schema and tablePrefix must be lower-case identifiers ([a-z_][a-z0-9_]*, at most 41 characters)',
      });
    }
    this.#tables = brokerTables(schema, prefix);
    this.#options = options;
    this.#pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 500);
    this.#drainTimeoutMs = positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000);
    this.#sweepIntervalMs = positiveInteger(options.sweepIntervalMs, 'sweepIntervalMs', 60_000);
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: true,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: true,
      publishDeduplication: false,
      maxMessageBytes: positiveInteger(options.maxMessageBytes, 'maxMessageBytes', MIB, MAX_BYTES),
    };
    this.#publisher = new PublishPipeline({
      write: (messages) => this.#write(messages),
      concurrency: positiveInteger(options.publishConcurrency, 'publishConcurrency', 4),
      maxMessages: STATEMENT_MESSAGES,
      maxBytes: STATEMENT_BYTES,
      isDataError,
    });
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      this.#pool = new pg.Pool({
        ...options.poolConfig,
        connectionString: options.connectionString ?? options.poolConfig?.connectionString,
      });
      this.#ownsPool = true;
      // Without a listener, an idle client's error (server restart) would crash the process.
      this.#pool.on('error', (error) => this.#report(error, 'keep an idle connection'));
    }
  }

  async publish(message: OutgoingMessage): Promise<void> {
    await this.publishBatch([message]);
  }

  /** All of the batch or none of it: one INSERT, possibly shared with other publishes of the same moment. */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen();
    for (const message of messages) this.#checkMessage(message);
    if (messages.length === 0) return;
    try {
      await this.#publisher.submit(messages);
    } catch (error) {
      throw asBrokerError(error, 'confirm the publish');
    }
  }

  async #write(messages: readonly OutgoingMessage[]): Promise<void> {
    await this.#ensureSchema();
    const values = [
      messages.map((m) => m.id),
      messages.map((m) => m.topic),
      messages.map((m) => JSON.stringify(m.headers)),
      messages.map((m) => Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)),
      messages.map((m) => m.key ?? null),
      this.#tables.channel,
    ];
    await this.#pool.query({ ...this.#tables.statements.publish, values });
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen();
    checkName('topic', topic);
    checkName('group', group);
    await this.#ensureSchema();
    try {
      await this.#pool.query({ ...this.#tables.statements.declareGroup, values: [topic, group] });
    } catch (error) {
      throw asBrokerError(error, `declare group ${group}`);
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen();
    checkName('topic', options.topic);
    checkName('group', options.group);
    const maxInFlight = positiveInteger(options.maxInFlight, 'maxInFlight', 64);
    const ackTimeoutMs = positiveInteger(options.ackTimeoutMs, 'ackTimeoutMs', 30_000);
    await this.declareGroup(options.topic, options.group);
    this.#assertOpen();
    this.#startBackground();
    const subscription: PostgresSubscription = new PostgresSubscription(
      {
        topic: options.topic,
        group: options.group,
        pool: this.#pool,
        tables: this.#tables,
        maxInFlight,
        ackTimeoutMs,
        pollIntervalMs: Math.min(this.#pollIntervalMs, ackTimeoutMs),
        drainTimeoutMs: this.#drainTimeoutMs,
        report: (error, action) => this.#report(error, action),
        onBacklog: () => this.#analyzeOnce(),
        toError: asBrokerError,
        onClosed: (closed) => this.#subscriptions.delete(closed),
      },
      handler,
    );
    this.#subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    await this.#publisher.idle();
    await this.#listener?.stop();
    if (this.#ownsPool) await this.#pool.end();
  }

  #startBackground(): void {
    if (this.#listener) return;
    this.#listener = new NotificationListener(
      this.#pool,
      this.#tables.channel,
      (topic) => {
        for (const subscription of this.#subscriptions) if (subscription.topic === topic) subscription.notify();
      },
      (error, action) => this.#report(error, action),
    );
    this.#listener.start();
    this.#sweeper = setInterval(() => {
      this.#pool.query(this.#tables.statements.sweepOrphans).catch((error: unknown) => this.#report(error, 'sweep orphaned messages'));
    }, this.#sweepIntervalMs);
    this.#sweeper.unref();
  }

  #assertOpen(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'the PostgreSQL broker was closed' });
  }

  #checkMessage(message: OutgoingMessage): void {
    checkName('topic', message.topic);
    if (message.body.byteLength > this.capabilities.maxMessageBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `message ${message.id} has ${message.body.byteLength} bytes; this broker takes at most ${this.capabilities.maxMessageBytes}`,
      });
    }
  }

  #ensureSchema(): Promise<void> | undefined {
    if (this.#ready) return undefined;
    this.#schema ??= this.#createSchema().then(
      () => {
        this.#ready = true;
      },
      (error: unknown) => {
        this.#schema = undefined;
        throw asBrokerError(error, 'create the broker tables');
      },
    );
    return this.#schema;
  }

  /** Idempotent; an advisory lock serialises concurrent starters (CREATE ... IF NOT EXISTS alone can race). */
  async #createSchema(): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.#tables.lockName]);
      for (const statement of this.#tables.schemaSql) await client.query(statement);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Once per broker, on the first backlog: `ANALYZE` the tables. Until autovacuum first analyzes a
   * new table, the planner takes every group for a handful of rows and plans settles and claims
   * as range scans, which cost seconds on a large backlog. Statistics fix the plans at once.
   */
  #analyzeOnce(): void {
    if (this.#analyzed) return;
    this.#analyzed = true;
    this.#pool.query(this.#tables.statements.analyze).catch((error: unknown) => this.#report(error, 'analyze the broker tables'));
  }

  #report(error: unknown, action: string): void {
    this.#options.onError?.(asBrokerError(error, action));
  }
}

/** Creates a PostgreSQL broker. Its tables are created on first use. */
export function createPostgresBroker(options: PostgresBrokerOptions = {}): PostgresBroker {
  return new PostgresBroker(options);
}
