import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings } from '@switchboard/core';
import { BrokerLifecycle, queueCapabilities, resolveSubscribeOptions } from '@switchboard/core/kit';
import type { Pool } from 'pg';
import pg from 'pg';
import { NotificationListener } from './broker-listener.js';
import { PublishPipeline } from './broker-publisher.js';
import { type BrokerTables, brokerTables } from './broker-sql.js';
import { postgresErrors } from './errors.js';
import { checkName, type PostgresBrokerOptions, type ResolvedPostgresBrokerOptions, resolvePostgresBrokerOptions } from './options.js';
import { PostgresSubscription } from './subscription.js';

export type { PostgresBrokerOptions } from './options.js';

const MIB = 1024 * 1024;
/** A coalesced publish statement takes more calls while under both limits. */
const STATEMENT_MESSAGES = 1000;
const STATEMENT_BYTES = 4 * MIB;

/** SQLSTATE class 22 (data exception): the server refused a value, not the connection or the statement. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

/**
 * A broker on PostgreSQL, for teams that run nothing else: a queue table with a row per message
 * and group, claimed with `FOR UPDATE SKIP LOCKED` under a lease, and LISTEN/NOTIFY to wake
 * consumers. Rows are in the plain layout (`docs/brokers.md`). See `docs/adapters/postgres.md`.
 */
export class PostgresBroker implements Broker {
  readonly name = 'postgres';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  readonly #tables: BrokerTables;
  readonly #options: PostgresBrokerOptions;
  readonly #resolved: ResolvedPostgresBrokerOptions;
  readonly #lifecycle = new BrokerLifecycle<PostgresSubscription>(postgresErrors);
  readonly #publisher: PublishPipeline;
  #listener: NotificationListener | undefined;
  #schema: Promise<void> | undefined;
  #ready = false;
  #analyzed = false;

  constructor(options: PostgresBrokerOptions = {}) {
    this.#resolved = resolvePostgresBrokerOptions(options);
    this.#tables = brokerTables(this.#resolved.schema, this.#resolved.prefix);
    this.#options = options;
    this.capabilities = queueCapabilities(this.#resolved.maxMessageBytes);
    this.#publisher = new PublishPipeline({
      write: (messages) => this.#write(messages),
      concurrency: this.#resolved.publishConcurrency,
      maxMessages: STATEMENT_MESSAGES,
      maxBytes: STATEMENT_BYTES,
      isDataError,
    });
    if (options.pool) {
      this.#pool = options.pool;
      this.#ownsPool = false;
    } else {
      this.#pool = new pg.Pool({ ...options.poolConfig, connectionString: options.url ?? options.poolConfig?.connectionString });
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
    this.#lifecycle.checkPublish(messages, this.capabilities.maxMessageBytes);
    for (const message of messages) checkName('topic', message.topic);
    if (messages.length === 0) return;
    try {
      await this.#publisher.submit(messages);
    } catch (error) {
      throw postgresErrors.toBrokerError(error, 'confirm the publish');
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
    await this.#declare(topic, group);
  }

  /** The group's number, declaring the group when it is new. */
  async #declare(topic: string, group: string): Promise<number> {
    this.#lifecycle.assertOpen('declareGroup');
    checkName('topic', topic);
    checkName('group', group);
    await this.#ensureSchema();
    try {
      // A group another connection is declaring at this moment is not in this statement's snapshot: ask again.
      for (let tries = 1; ; tries++) {
        const { rows } = await this.#pool.query<{ gid: number }>({ ...this.#tables.statements.declareGroup, values: [topic, group] });
        if (rows[0] !== undefined) return rows[0].gid;
        if (tries === 3) throw new Error('the group is not in the table after its declaration');
      }
    } catch (error) {
      throw postgresErrors.toBrokerError(error, `declare group ${group}`);
    }
  }

  /** The group's rows in the queue table: ready, leased to a consumer, or waiting out a nack delay (an ack deletes the row). */
  async pending(topic: string, group: string): Promise<number | undefined> {
    if (this.#lifecycle.closed) return undefined;
    checkName('topic', topic);
    checkName('group', group);
    await this.#ensureSchema();
    const { groups, queue } = this.#tables;
    try {
      const { rows } = await this.#pool.query<{ n: string }>({
        text: `SELECT (SELECT count(*) FROM ${queue} q WHERE q.gid = g.gid) AS n FROM ${groups} g WHERE g.topic = $1 AND g.group_name = $2`,
        values: [topic, group],
      });
      return rows[0] === undefined ? undefined : Number(rows[0].n);
    } catch (error) {
      throw postgresErrors.toBrokerError(error, `count the rows of group ${group}`);
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#lifecycle.assertOpen('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
    const gid = await this.#declare(options.topic, options.group);
    this.#lifecycle.assertOpen('subscribe');
    this.#startListening();
    const subscription: PostgresSubscription = new PostgresSubscription(
      {
        topic: options.topic,
        group: options.group,
        gid,
        pool: this.#pool,
        tables: this.#tables,
        maxInFlight,
        ackTimeoutMs,
        pollIntervalMs: Math.min(this.#resolved.pollIntervalMs, ackTimeoutMs),
        drainTimeoutMs: this.#resolved.drainTimeoutMs,
        report: (error, action) => this.#report(error, action),
        onBacklog: () => this.#analyzeOnce(),
        onClosed: (closed) => this.#lifecycle.forget(closed),
      },
      handler,
    );
    this.#lifecycle.add(subscription).start();
    return subscription;
  }

  close(): Promise<void> {
    return this.#lifecycle.close({
      after: async () => {
        await this.#publisher.idle();
        await this.#listener?.stop();
        if (this.#ownsPool) await this.#pool.end();
      },
    });
  }

  #startListening(): void {
    if (this.#listener) return;
    this.#listener = new NotificationListener(
      this.#pool,
      this.#tables.channel,
      (topic) => {
        for (const subscription of this.#lifecycle.subscriptions()) if (subscription.topic === topic) subscription.notify();
      },
      (error, action) => this.#report(error, action),
    );
    this.#listener.start();
  }

  #ensureSchema(): Promise<void> | undefined {
    if (this.#ready) return undefined;
    this.#schema ??= this.#createSchema().then(
      () => {
        this.#ready = true;
      },
      (error: unknown) => {
        this.#schema = undefined;
        throw postgresErrors.toBrokerError(error, 'create the broker tables');
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
   * Once per broker, on the first backlog: `ANALYZE` the queue. Until autovacuum first analyzes a
   * new table, the planner takes a group for a handful of rows and may plan claims as scans, which
   * cost seconds on a large backlog. Statistics fix the plans at once.
   */
  #analyzeOnce(): void {
    if (this.#analyzed) return;
    this.#analyzed = true;
    this.#pool.query(this.#tables.statements.analyze).catch((error: unknown) => this.#report(error, 'analyze the broker tables'));
  }

  #report(error: unknown, action: string): void {
    this.#options.onError?.(postgresErrors.toBrokerError(error, action));
  }
}

/** Creates a PostgreSQL broker. Its tables are created on first use. */
export function createPostgresBroker(options: PostgresBrokerOptions = {}): PostgresBroker {
  return new PostgresBroker(options);
}
