import type {
  AnyContract,
  BackoffOptions,
  BlobStore,
  Broker,
  ChangeDefinition,
  ChangeOperation,
  DeadLetterStore,
  FieldError,
} from '@switchboard/core';
import { backoffDelay, channels, isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { schemaPropertyNames, sleep } from '@switchboard/core/kit';
import { type BatchEvent, type ClaimCheckOptions, createMessaging, type Messaging } from '@switchboard/messaging';
import pg from 'pg';
import { changeDeadLetter, validationDetail } from './dead-letter.js';
import { ChangeIds } from './ids.js';
import { formatLsn, parseLsn } from './lsn.js';
import { decodePgoutput, type PgoutputMessage, type RelationMessage, type TupleValue } from './pgoutput.js';
import { quoteIdentifier, quoteLiteral, REPLICATION_SESSION_OPTIONS, ReplicationStream } from './replication.js';
import { type ChangeSetupReport, clientConfig, connect, createMissing, type Inspection, inspect, setupError } from './setup.js';
import { type Converter, converterFor, type TypeInfo } from './values.js';

export interface PostgresChangeSourceOptions {
  /** PostgreSQL connection: a URL or a `pg` client configuration. The role needs REPLICATION. */
  readonly connection: string | pg.ClientConfig;
  /** The contract whose `changes` declarations say which tables to read and which events to publish. */
  readonly contract: AnyContract;
  /** Where the events go: any broker; every publish is confirmed before the slot moves past it. */
  readonly broker: Broker;
  /** The logical replication slot (pgoutput) the source reads; it holds the confirmed position across restarts. */
  readonly slot: string;
  /** The publication naming the tables. */
  readonly publication: string;
  /**
   * Create what is missing at `start`: the publication (for the declared tables and operations) or
   * the declared tables it lacks, and the slot. Default false: a missing one is an `SB_CHANGES_SETUP`
   * error with the SQL to run.
   */
  readonly create?: boolean | { readonly publication?: boolean; readonly slot?: boolean };
  /** Where changes that fail their schema go (with the row key and the reason). `false`: dropped, reported to `onError`. */
  readonly deadLetters: DeadLetterStore | false;
  /** Dead letters' `group`. Default `changes.<slot>`. */
  readonly group?: string;
  /** Claim check: rows larger than `claimCheck.thresholdBytes` are stored in the first blob store and sent by reference. */
  readonly blobs?: BlobStore | readonly BlobStore[];
  readonly claimCheck?: ClaimCheckOptions;
  /** The database's name in the events' `source` (`/postgres/<database>/<schema>.<table>`). Default: its actual name. */
  readonly database?: string;
  /**
   * Most changes read and not yet confirmed by the broker. At the bound the source stops reading
   * the replication stream (the server waits) until half of them are confirmed. Default 4096.
   */
  readonly maxPending?: number;
  /** Most changes per broker batch. Default 512. */
  readonly batchSize?: number;
  /** How often the confirmed position is sent to the server even when it did not move, in ms. Default 10 000. */
  readonly statusIntervalMs?: number;
  /**
   * Slot lag (WAL bytes between the server's current position and the slot's confirmed one) above
   * which the source reports on the `switchboard:changes:lag` diagnostics channel. Default 1 GiB.
   */
  readonly maxLagBytes?: number;
  /** How often the lag is checked against `maxLagBytes`, in ms. Default 30 000; 0 turns the check off. */
  readonly lagCheckIntervalMs?: number;
  /** Backoff between attempts when the broker or the dead-letter store fails, and between reconnects. */
  readonly retry?: BackoffOptions;
  /** Failures the source recovers from by itself (broker down, connection lost, a dropped dead letter). */
  readonly onError?: (error: unknown) => void;
}

export interface ChangeLag {
  /** WAL bytes between the server's current position and the slot's confirmed position. */
  readonly bytes: number;
  readonly currentLsn: string;
  readonly confirmedLsn: string;
  /** Whether a connection is streaming from the slot. */
  readonly active: boolean;
  /** Changes this source read and the broker has not confirmed yet. */
  readonly pending: number;
  /** Whether `bytes` is above `maxLagBytes`. */
  readonly exceeded: boolean;
}

export interface ChangeSourceStats {
  /** Events confirmed by the broker (a change republished after a reconnect counts again). */
  readonly published: number;
  readonly deadLettered: number;
  /** Changes that failed their schema while `deadLetters` is false. */
  readonly dropped: number;
  /** Changes of tables or operations the contract does not publish. */
  readonly skipped: number;
  /** Changes read and not yet confirmed. */
  readonly pending: number;
  /** The most changes ever pending at once (bounded by `maxPending` plus what one socket read holds). */
  readonly maxPendingSeen: number;
  /** Times the source stopped reading because `maxPending` was reached. */
  readonly pauses: number;
  /** Replication connections opened again after one was lost. */
  readonly reconnects: number;
  /** Broker or dead-letter attempts that failed and were retried. */
  readonly retries: number;
  readonly confirmedLsn: string;
}

export interface ChangeSource {
  /**
   * Checks the setup (creating what `create` allows), connects and starts streaming. Rejects with
   * `SB_CHANGES_SETUP` listing every problem and its fix.
   */
  start(): Promise<void>;
  /** Stops reading, lets the batch in flight finish, sends the confirmed position and disconnects. */
  close(): Promise<void>;
  /** The slot's lag, read from the server now. */
  lag(): Promise<ChangeLag>;
  stats(): ChangeSourceStats;
  /** The setup report of the last `start`. */
  readonly report: ChangeSetupReport | undefined;
}

/**
 * Committed PostgreSQL row changes as typed CloudEvents, read by logical replication (`pgoutput`).
 *
 * Every insert, update and delete of a table the contract declares with `changes(...)` becomes one
 * event of the contract, published through the messaging layer (`emitBatch`, with the contract's
 * validation, the broker's CloudEvents binding and the claim check): `source` is
 * `/postgres/<database>/<schema>.<table>`, `subject` the row key, `id` a UUID made of the commit
 * LSN, the change's position in its transaction and a tag of the server and table (see
 * `ChangeIds`), so reading a change again gives it the same id and the receivers' inbox absorbs it.
 *
 * The slot's confirmed position moves past a transaction only once every change of it (and of
 * every transaction before it) is confirmed by the broker or stored as a dead letter, so a crash
 * loses nothing committed: the next start reads the unconfirmed transactions again. Changes are
 * published in commit order, one batch at a time, with the table and key as the ordering key.
 */
export function createPostgresChangeSource(options: PostgresChangeSourceOptions): ChangeSource {
  return new PostgresChangeSource(options);
}

/** Confirmed positions are sent at most this often while batches are confirmed (and always at close and on request). */
const STATUS_EVERY_MS = 50;

const DEFAULTS = { maxPending: 4096, batchSize: 512, statusIntervalMs: 10_000, maxLagBytes: 2 ** 30, lagCheckIntervalMs: 30_000 };

/** One declared table, ready to publish. */
interface TablePlan {
  readonly declaration: ChangeDefinition;
  readonly qualified: string;
  readonly source: string;
  readonly messaging: Messaging;
  /** Columns sent (those of the `columns` schema, when the validator describes them); undefined: all. */
  readonly project: ReadonlySet<string> | undefined;
  /** The table's id maker, once the server's system identifier is known. */
  ids?: ChangeIds;
}

/** A relation as the stream announced it, mapped to its table plan. */
interface RelationPlan {
  readonly table: TablePlan | undefined;
  readonly names: readonly string[];
  readonly converters: readonly Converter[];
  readonly include: readonly boolean[];
  /** Position of each key column in the relation, -1 when the relation lacks it. */
  readonly keyIndexes: readonly number[];
}

interface ChangeItem {
  readonly kind: 'change';
  readonly table: TablePlan;
  readonly operation: ChangeOperation;
  readonly event: string;
  readonly id: string;
  readonly data: Record<string, unknown>;
  readonly subject: string | undefined;
  /** Why the change cannot be published (a key value missing); it is dead-lettered. */
  readonly problem?: string;
}

interface CheckpointItem {
  readonly kind: 'checkpoint';
  lsn: bigint;
}

type Item = ChangeItem | CheckpointItem;

interface Counters {
  published: number;
  deadLettered: number;
  dropped: number;
  skipped: number;
  maxPendingSeen: number;
  pauses: number;
  reconnects: number;
  retries: number;
}

class PostgresChangeSource implements ChangeSource {
  readonly #options: PostgresChangeSourceOptions;
  readonly #contract: AnyContract;
  readonly #maxPending: number;
  readonly #batchSize: number;
  readonly #group: string;
  readonly #counters: Counters = {
    published: 0,
    deadLettered: 0,
    dropped: 0,
    skipped: 0,
    maxPendingSeen: 0,
    pauses: 0,
    reconnects: 0,
    retries: 0,
  };
  readonly #closing = new AbortController();
  #control: pg.Pool | undefined;
  #tables = new Map<string, TablePlan>();
  #types: ReadonlyMap<number, TypeInfo> = new Map();
  #systemId = '';
  #confirmed = 0n;
  #session: Session | undefined;
  #loop: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #lagExceeded = false;
  #started = false;
  report: ChangeSetupReport | undefined;

  constructor(options: PostgresChangeSourceOptions) {
    for (const name of ['slot', 'publication'] as const) {
      if (typeof options[name] !== 'string' || options[name] === '') {
        throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `\`${name}\` is required` });
      }
    }
    if (options.deadLetters === undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: '`deadLetters` is required: a DeadLetterStore, or false to drop invalid changes',
      });
    }
    this.#options = options;
    this.#contract = options.contract;
    this.#maxPending = positive('maxPending', options.maxPending ?? DEFAULTS.maxPending);
    this.#batchSize = positive('batchSize', options.batchSize ?? DEFAULTS.batchSize);
    this.#group = options.group ?? `changes.${options.slot}`;
  }

  get #signal(): AbortSignal {
    return this.#closing.signal;
  }

  async start(): Promise<void> {
    if (this.#started) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the change source was started already' });
    this.#started = true;
    const control = new pg.Pool({ ...clientConfig(this.#options.connection), max: 1 });
    control.on('error', () => {});
    this.#control = control;
    try {
      const inspection = await this.#inspect();
      this.report = inspection.report;
      if (!inspection.report.ok) throw setupError(inspection.report);
      this.#types = inspection.types;
      this.#tables = this.#plans(inspection.report.database);
      this.#session = await this.#openSession();
    } catch (error) {
      this.#closing.abort();
      await control.end().catch(() => {});
      throw error;
    }
    this.#loop = this.#run();
    const statusTimer = setInterval(
      () => this.#session?.sendStatus(this.#confirmed),
      this.#options.statusIntervalMs ?? DEFAULTS.statusIntervalMs,
    );
    statusTimer.unref();
    this.#timers.push(statusTimer);
    const lagEvery = this.#options.lagCheckIntervalMs ?? DEFAULTS.lagCheckIntervalMs;
    if (lagEvery > 0) {
      const lagTimer = setInterval(() => {
        this.lag().catch((error: unknown) => this.#report(error));
      }, lagEvery);
      lagTimer.unref();
      this.#timers.push(lagTimer);
    }
  }

  /** The doctor's inspection, after creating what `create` allows. */
  async #inspect(): Promise<Inspection> {
    const client = await this.#controlClient();
    try {
      const target = { contract: this.#contract, slot: this.#options.slot, publication: this.#options.publication };
      let inspection = await inspect(client, target);
      const create = this.#options.create ?? false;
      const allowed =
        typeof create === 'boolean'
          ? { publication: create, slot: create }
          : { publication: create.publication ?? false, slot: create.slot ?? false };
      if (!inspection.report.ok && (allowed.publication || allowed.slot)) {
        if (await createMissing(client, inspection, target, allowed)) inspection = await inspect(client, target);
      }
      return inspection;
    } finally {
      client.release();
    }
  }

  async #controlClient(): Promise<pg.PoolClient> {
    const control = this.#control;
    if (control === undefined) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the change source is not started' });
    try {
      return await control.connect();
    } catch (error) {
      throw new SwitchboardError('SB_UNAVAILABLE', { detail: `cannot connect to PostgreSQL: ${(error as Error).message}`, cause: error });
    }
  }

  #plans(actualDatabase: string): Map<string, TablePlan> {
    const database = this.#options.database ?? actualDatabase;
    const plans = new Map<string, TablePlan>();
    for (const declaration of this.#contract.changes) {
      const qualified = `${declaration.schema}.${declaration.name}`;
      const source = `/postgres/${encodeURIComponent(database)}/${encodeURIComponent(declaration.schema)}.${encodeURIComponent(declaration.name)}`;
      const names = schemaPropertyNames(declaration.columns);
      plans.set(qualified, {
        declaration,
        qualified,
        source,
        // One messaging per table: its `service` is the events' `source`. It never consumes.
        messaging: createMessaging({
          broker: this.#options.broker,
          service: source,
          deadLetters: false,
          declareReceiverGroups: false,
          ...(this.#options.blobs === undefined ? {} : { blobs: this.#options.blobs }),
          ...(this.#options.claimCheck === undefined ? {} : { claimCheck: this.#options.claimCheck }),
        }),
        project: names === undefined ? undefined : new Set([...names, ...declaration.key]),
      });
    }
    return plans;
  }

  /** Opens a replication connection and starts streaming from the confirmed position. */
  async #openSession(): Promise<Session> {
    const config = clientConfig(this.#options.connection);
    const client = new pg.Client({
      ...config,
      replication: 'database',
      options: config.options === undefined ? REPLICATION_SESSION_OPTIONS : `${config.options} ${REPLICATION_SESSION_OPTIONS}`,
    } as pg.ClientConfig);
    await connect(client);
    try {
      const identity = (await client.query<{ systemid: string }>('IDENTIFY_SYSTEM')).rows[0];
      if (identity === undefined) throw new SwitchboardError('SB_INTERNAL', { detail: 'IDENTIFY_SYSTEM answered no row' });
      if (this.#systemId === '') this.#systemId = identity.systemid;
      else if (this.#systemId !== identity.systemid) {
        this.#report(
          new SwitchboardError('SB_CONFIG_INVALID', {
            detail: `the server's system identifier changed from ${this.#systemId} to ${identity.systemid}; ids stay derived from the first`,
          }),
        );
      }
      const session = new Session(this, client);
      const sql =
        `START_REPLICATION SLOT ${quoteIdentifier(this.#options.slot)} LOGICAL ${formatLsn(this.#confirmed)} ` +
        `(proto_version '1', publication_names ${quoteLiteral(quoteIdentifier(this.#options.publication))})`;
      await session.start(sql);
      return session;
    } catch (error) {
      await client.end().catch(() => {});
      throw startError(error, this.#options.slot);
    }
  }

  /** Keeps a session open: when one ends (connection lost, server restarted), opens the next one. */
  async #run(): Promise<void> {
    for (;;) {
      const session = this.#session;
      if (session === undefined) return;
      const error = await session.done;
      if (this.#signal.aborted) return;
      if (error !== undefined) this.#report(error);
      this.#session = undefined;
      for (let attempt = 1; ; attempt++) {
        try {
          await sleep(backoffDelay(attempt, this.#options.retry), this.#signal);
        } catch {
          return;
        }
        try {
          const reopened = await this.#openSession();
          if (this.#signal.aborted) {
            // Closed while reconnecting: this session is not wanted any more.
            await reopened.stop();
            return;
          }
          this.#session = reopened;
          this.#counters.reconnects += 1;
          break;
        } catch (reconnectError) {
          this.#report(reconnectError);
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.#signal.aborted) return;
    this.#closing.abort(new SwitchboardError('SB_CLOSED', { detail: 'change source closed' }));
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    const session = this.#session;
    if (session !== undefined) await session.stop();
    await this.#loop;
    await this.#control?.end().catch(() => {});
  }

  async lag(): Promise<ChangeLag> {
    const client = await this.#controlClient();
    let row: { current: string; confirmed: string | null; active: boolean } | undefined;
    try {
      row = (
        await client.query<{ current: string; confirmed: string | null; active: boolean }>(
          `SELECT pg_current_wal_lsn()::text AS current, confirmed_flush_lsn::text AS confirmed, active
             FROM pg_replication_slots WHERE slot_name = $1`,
          [this.#options.slot],
        )
      ).rows[0];
    } finally {
      client.release();
    }
    if (row === undefined) {
      throw new SwitchboardError('SB_CHANGES_SETUP', { detail: `replication slot ${this.#options.slot} does not exist any more` });
    }
    const confirmed = row.confirmed === null ? 0n : parseLsn(row.confirmed);
    const current = parseLsn(row.current);
    const bytes = Number(current > confirmed ? current - confirmed : 0n);
    const maxLagBytes = this.#options.maxLagBytes ?? DEFAULTS.maxLagBytes;
    const exceeded = bytes > maxLagBytes;
    const lag: ChangeLag = {
      bytes,
      currentLsn: row.current,
      confirmedLsn: row.confirmed ?? formatLsn(0n),
      active: row.active,
      pending: this.#session?.pending ?? 0,
      exceeded,
    };
    if ((exceeded || this.#lagExceeded) && channels.changeLag.hasSubscribers) {
      channels.changeLag.publish({
        source: this.#contract.name,
        slot: this.#options.slot,
        lagBytes: bytes,
        maxLagBytes,
        confirmedLsn: lag.confirmedLsn,
        currentLsn: lag.currentLsn,
        exceeded,
      });
    }
    this.#lagExceeded = exceeded;
    if (channels.changeProgress.hasSubscribers) {
      channels.changeProgress.publish({
        source: this.#contract.name,
        slot: this.#options.slot,
        lagBytes: bytes,
        confirmedLsn: lag.confirmedLsn,
        currentLsn: lag.currentLsn,
      });
    }
    return lag;
  }

  stats(): ChangeSourceStats {
    return { ...this.#counters, pending: this.#session?.pending ?? 0, confirmedLsn: formatLsn(this.#confirmed) };
  }

  // --- for sessions

  get counters(): Counters {
    return this.#counters;
  }

  get maxPending(): number {
    return this.#maxPending;
  }

  get batchSize(): number {
    return this.#batchSize;
  }

  get closing(): AbortSignal {
    return this.#signal;
  }

  get confirmed(): bigint {
    return this.#confirmed;
  }

  /** Moves the confirmed position forward (never back); returns whether it moved. */
  confirm(lsn: bigint): boolean {
    if (lsn <= this.#confirmed) return false;
    this.#confirmed = lsn;
    return true;
  }

  table(schema: string, name: string): TablePlan | undefined {
    return this.#tables.get(`${schema === '' ? 'pg_catalog' : schema}.${name}`);
  }

  relation(message: RelationMessage): RelationPlan {
    const table = this.table(message.schema, message.name);
    const names = message.columns.map((c) => c.name);
    return {
      table,
      names,
      converters: message.columns.map((c) => converterFor(c.typeOid, this.#types)),
      include: names.map((n) => table?.project === undefined || table.project.has(n)),
      keyIndexes: table === undefined ? [] : table.declaration.key.map((k) => names.indexOf(k)),
    };
  }

  id(table: TablePlan, commitLsn: bigint, position: number): string {
    table.ids ??= new ChangeIds(this.#systemId, table.qualified);
    return table.ids.id(commitLsn, position);
  }

  /** Publishes the changes of a batch, table by table (in parallel; each table's in order); retries until done or closed. */
  async publish(changes: readonly ChangeItem[], abort: AbortSignal): Promise<boolean> {
    const groups = new Map<TablePlan, ChangeItem[]>();
    for (const change of changes) {
      const group = groups.get(change.table);
      if (group === undefined) groups.set(change.table, [change]);
      else group.push(change);
    }
    const open = new Set(groups.keys());
    for (let attempt = 1; ; attempt++) {
      const tables = [...open];
      const results = await Promise.allSettled(tables.map((table) => this.#publishTable(table, groups.get(table) ?? [])));
      let failure: unknown;
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') open.delete(tables[i] as TablePlan);
        else failure ??= result.reason;
      });
      if (open.size === 0) return true;
      this.#counters.retries += 1;
      this.#report(failure);
      if (abort.aborted) return false;
      try {
        await sleep(backoffDelay(attempt, this.#options.retry), abort);
      } catch {
        return false;
      }
    }
  }

  async #publishTable(table: TablePlan, changes: readonly ChangeItem[]): Promise<void> {
    const publishable = changes.filter((c) => c.problem === undefined);
    for (const change of changes) if (change.problem !== undefined) await this.#deadLetter(change, change.problem, []);
    if (publishable.length === 0) return;
    try {
      await table.messaging.emitBatch(this.#contract, publishable.map(batchEvent));
      this.#counters.published += publishable.length;
      return;
    } catch (error) {
      if (!isSwitchboardError(error, 'SB_VALIDATION')) throw error;
    }
    // Some change failed its schema: one at a time, in order, dead-lettering those that fail.
    for (const change of publishable) {
      const event = batchEvent(change);
      try {
        await table.messaging.emit(this.#contract, event.name, event.data as never, event.options);
        this.#counters.published += 1;
      } catch (error) {
        if (!isSwitchboardError(error, 'SB_VALIDATION')) throw error;
        await this.#deadLetter(change, `does not match its schema (${validationDetail(error)})`, error.errors ?? []);
      }
    }
  }

  async #deadLetter(change: ChangeItem, why: string, errors: readonly FieldError[]): Promise<void> {
    const detail = `${change.operation} of ${change.table.qualified} row ${change.subject ?? '(no key)'} ${why}`;
    const deadLetters = this.#options.deadLetters;
    if (deadLetters === false) {
      this.#counters.dropped += 1;
      this.#report(new SwitchboardError('SB_MESSAGE_INVALID', { detail: `${detail}; dropped (no dead-letter store)`, errors }));
      return;
    }
    const refused = {
      contract: this.#contract,
      event: change.event,
      id: change.id,
      source: change.table.source,
      subject: change.subject,
      key: orderingKey(change),
      data: change.data,
    };
    await deadLetters.add(changeDeadLetter(refused, { binding: this.#options.broker.binding, group: this.#group, detail, errors }));
    this.#counters.deadLettered += 1;
  }

  #report(error: unknown): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // An observer's failure is not the source's.
    }
  }
}

/**
 * One replication connection: reads the stream, turns changes into items in commit order, and
 * publishes them one batch at a time, confirming the position after each. Everything it read and
 * did not confirm is dropped when it ends; the next session reads it again from the slot.
 */
class Session {
  readonly #source: PostgresChangeSource;
  readonly #client: pg.Client;
  #stream: ReplicationStream | undefined;
  readonly #relations = new Map<number, RelationPlan>();
  readonly #queue: Item[] = [];
  #head = 0;
  #pending = 0;
  #inFlight = 0;
  #transaction: { readonly commitLsn: bigint; readonly positions: Map<TablePlan, number> } | undefined;
  #wake: (() => void) | undefined;
  #lastStatusAt = 0;
  #statusTimer: NodeJS.Timeout | undefined;
  #ended = false;
  #error: Error | undefined;
  readonly #abort = new AbortController();
  readonly done: Promise<Error | undefined>;
  #resolveDone!: (error: Error | undefined) => void;
  #endedStream!: () => void;
  readonly #streamEnded: Promise<void>;

  constructor(source: PostgresChangeSource, client: pg.Client) {
    this.#source = source;
    this.#client = client;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.#streamEnded = new Promise((resolve) => {
      this.#endedStream = resolve;
    });
    client.on('error', (error) => this.#end(error));
    client.on('end', () => this.#end(new Error('the replication connection closed')));
  }

  get pending(): number {
    return this.#pending + this.#inFlight;
  }

  async start(sql: string): Promise<void> {
    const stream = new ReplicationStream(sql, {
      data: (_walStart, payload, offset) => {
        try {
          this.#data(payload, offset);
        } catch (error) {
          // Never into the driver's socket handler: the session ends and the next one reads again from the slot.
          this.#end(error as Error);
          this.#client.end().catch(() => {});
        }
      },
      keepalive: (walEnd, reply) => this.#keepalive(walEnd, reply),
      end: (error) => this.#end(error),
    });
    this.#stream = stream;
    this.#client.query(stream);
    await stream.started;
    void this.#pump();
  }

  sendStatus(lsn: bigint, reply = false): void {
    if (this.#ended) return;
    this.#lastStatusAt = Date.now();
    this.#stream?.sendStatus(lsn, reply);
  }

  /** Sends the confirmed position now, or at most STATUS_EVERY_MS after the last one (one update for many batches). */
  #statusSoon(): void {
    if (this.#statusTimer !== undefined) return;
    const wait = this.#lastStatusAt + STATUS_EVERY_MS - Date.now();
    if (wait <= 0) {
      this.sendStatus(this.#source.confirmed);
      return;
    }
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      this.sendStatus(this.#source.confirmed);
    }, wait);
    this.#statusTimer.unref();
  }

  /** Closing: no more reading; the batch in flight finishes (its retries stop), the position is sent, the connection ends. */
  async stop(): Promise<void> {
    this.#stream?.pause();
    this.#abort.abort();
    this.#wake?.();
    await this.done;
    this.sendStatus(this.#source.confirmed);
    this.#stream?.stop();
    const timeout = new AbortController();
    await Promise.race([this.#streamEnded, sleep(5000, timeout.signal).catch(() => {})]);
    timeout.abort();
    await this.#client.end().catch(() => {});
  }

  #data(payload: Buffer, offset: number): void {
    let message: PgoutputMessage;
    try {
      message = decodePgoutput(payload, offset);
    } catch (error) {
      this.#end(error as Error);
      this.#client.end().catch(() => {});
      return;
    }
    switch (message.tag) {
      case 'begin':
        this.#transaction = { commitLsn: message.finalLsn, positions: new Map() };
        return;
      case 'commit':
        this.#transaction = undefined;
        this.#push({ kind: 'checkpoint', lsn: message.endLsn });
        return;
      case 'relation':
        this.#relations.set(message.relationId, this.#source.relation(message));
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.#change(message);
        return;
      default:
        // type, origin, truncate (not a row change), logical decoding messages: nothing to publish.
        return;
    }
  }

  #change(message: Extract<PgoutputMessage, { tag: 'insert' | 'update' | 'delete' }>): void {
    const relation = this.#relations.get(message.relationId);
    const transaction = this.#transaction;
    if (relation === undefined || transaction === undefined) {
      this.#end(new Error(`pgoutput: a ${message.tag} outside a transaction or of an unannounced relation`));
      this.#client.end().catch(() => {});
      return;
    }
    const table = relation.table;
    if (table === undefined) {
      this.#source.counters.skipped += 1;
      return;
    }
    const position = transaction.positions.get(table) ?? 0;
    transaction.positions.set(table, position + 1);
    const operation = message.tag;
    const event = table.declaration.events[operation];
    if (event === undefined) {
      this.#source.counters.skipped += 1;
      return;
    }
    let keyValues: readonly TupleValue[];
    let data: Record<string, unknown>;
    if (message.tag === 'delete') {
      keyValues = message.key ?? message.old ?? [];
      data = {};
      relation.keyIndexes.forEach((index, i) => {
        const text = index === -1 ? undefined : keyValues[index];
        if (typeof text === 'string') data[table.declaration.key[i] as string] = (relation.converters[index] as Converter)(text);
      });
    } else {
      keyValues = message.new;
      data = row(relation, message.new, message.tag === 'update' ? message.old : undefined);
    }
    const parts: string[] = [];
    let problem: string | undefined;
    relation.keyIndexes.forEach((index, i) => {
      const text = index === -1 ? undefined : keyValues[index];
      if (typeof text === 'string') parts.push(text);
      else
        problem ??= `has no value for key column ${table.declaration.key[i]}${operation === 'delete' ? ' (not in the replica identity)' : ''}`;
    });
    const subject = problem !== undefined ? undefined : parts.length === 1 ? parts[0] : parts.map(encodeURIComponent).join('/');
    this.#push({
      kind: 'change',
      table,
      operation,
      event,
      id: this.#source.id(table, transaction.commitLsn, position),
      data,
      subject,
      ...(problem === undefined ? {} : { problem }),
    });
  }

  #keepalive(walEnd: bigint, reply: boolean): void {
    // Outside a transaction, everything committed before `walEnd` was sent: once what came before
    // is confirmed, so is `walEnd` (what PostgreSQL's own apply worker does when it has nothing pending).
    if (this.#transaction === undefined) this.#push({ kind: 'checkpoint', lsn: walEnd });
    if (reply) this.sendStatus(this.#source.confirmed);
  }

  #push(item: Item): void {
    if (this.#ended) return;
    const last = this.#queue[this.#queue.length - 1];
    if (item.kind === 'checkpoint') {
      if (last?.kind === 'checkpoint' && this.#queue.length > this.#head) {
        if (item.lsn > last.lsn) last.lsn = item.lsn;
      } else this.#queue.push(item);
    } else {
      this.#queue.push(item);
      this.#pending += 1;
      const pending = this.pending;
      const counters = this.#source.counters;
      if (pending > counters.maxPendingSeen) counters.maxPendingSeen = pending;
      if (pending >= this.#source.maxPending && this.#stream !== undefined && !this.#stream.paused) {
        this.#stream.pause();
        counters.pauses += 1;
      }
    }
    this.#wake?.();
  }

  /** Takes the next batch: up to `batchSize` changes and the checkpoints among them, in stream order. */
  #take(): Item[] {
    const out: Item[] = [];
    let changes = 0;
    while (this.#head < this.#queue.length && changes < this.#source.batchSize) {
      const item = this.#queue[this.#head++] as Item;
      out.push(item);
      if (item.kind === 'change') changes++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    return out;
  }

  async #pump(): Promise<void> {
    const source = this.#source;
    try {
      while (!this.#ended && !this.#abort.signal.aborted) {
        if (this.#head >= this.#queue.length) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = undefined;
          // Let the socket reads already waiting be decoded first: one batch for all of them.
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const batch = this.#take();
        const changes = batch.filter((item): item is ChangeItem => item.kind === 'change');
        this.#pending -= changes.length;
        this.#inFlight = changes.length;
        const published = changes.length === 0 || (await source.publish(changes, this.#abort.signal));
        this.#inFlight = 0;
        if (!published) break;
        let checkpoint: bigint | undefined;
        for (const item of batch) if (item.kind === 'checkpoint') checkpoint = item.lsn;
        if (checkpoint !== undefined && source.confirm(checkpoint)) this.#statusSoon();
        if (this.#stream?.paused && this.pending <= source.maxPending / 2 && !this.#abort.signal.aborted) this.#stream.resume();
      }
    } catch (error) {
      this.#end(error as Error);
    } finally {
      this.#inFlight = 0;
      this.#resolveDone(this.#error);
    }
  }

  #end(error: Error | undefined): void {
    if (error !== undefined && this.#error === undefined && !this.#ended) this.#error = error;
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#statusTimer);
    this.#endedStream();
    this.#abort.abort();
    this.#queue.length = 0;
    this.#head = 0;
    this.#pending = 0;
    this.#wake?.();
    if (this.#stream === undefined) this.#resolveDone(this.#error);
  }
}

/** The row of a tuple: converted values of the sent columns; an unchanged TOASTed value comes from the old row when there is one, else it is left out. */
function row(relation: RelationPlan, values: readonly TupleValue[], old: readonly TupleValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { names, converters, include } = relation;
  for (let i = 0; i < names.length; i++) {
    if (!include[i]) continue;
    let text = values[i];
    if (text === undefined && old !== undefined) text = old[i];
    if (text === undefined) continue;
    out[names[i] as string] = text === null ? null : (converters[i] as Converter)(text);
  }
  return out;
}

function orderingKey(change: ChangeItem): string {
  return `${change.table.qualified}/${change.subject ?? ''}`;
}

function batchEvent(change: ChangeItem): BatchEvent<AnyContract> {
  return {
    name: change.event,
    data: change.data,
    options: { id: change.id, key: orderingKey(change), ...(change.subject === undefined ? {} : { subject: change.subject }) },
  };
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive integer, got ${value}` });
  }
  return value;
}

/** A refused START_REPLICATION as the setup error that names the fix, other failures as they are. */
function startError(error: unknown, slot: string): unknown {
  if (isSwitchboardError(error)) return error;
  const message = (error as Error)?.message ?? String(error);
  const problem = (code: 'slot-active' | 'slot-missing' | 'privileges', fix: string) =>
    new SwitchboardError('SB_CHANGES_SETUP', {
      detail: `${message}. Fix: ${fix}`,
      extensions: { problems: [{ code, message, fix, creatable: false }] },
      cause: error,
    });
  if (/is active for PID/i.test(message)) return problem('slot-active', `stop the other reader of slot ${slot}, or use another slot`);
  if (/does not exist/i.test(message))
    return problem('slot-missing', `SELECT pg_create_logical_replication_slot(${quoteLiteral(slot)}, 'pgoutput');`);
  if (/superuser or replication role|permission denied/i.test(message)) return problem('privileges', 'ALTER ROLE <role> WITH REPLICATION;');
  return new SwitchboardError('SB_UNAVAILABLE', { detail: `replication did not start: ${message}`, cause: error });
}
