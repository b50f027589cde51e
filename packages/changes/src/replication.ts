import type { Duplex } from 'node:stream';
import type pg from 'pg';

/**
 * The streaming half of PostgreSQL's replication protocol on a `pg` connection opened with
 * `replication: 'database'`: `START_REPLICATION ... LOGICAL` as a `pg` Submittable (the driver's
 * extension point for queries that take over the connection, as COPY streams do), the CopyData
 * messages it receives (XLogData, primary keepalive) and the standby status updates it sends.
 * Backpressure is the socket's: `pause()` stops reading it, so the server's send buffer fills and
 * the walsender waits.
 */

/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const POSTGRES_EPOCH_MS = 946_684_800_000;

export interface ReplicationHandlers {
  /** One XLogData message: the WAL position of its data, and the pgoutput message in `payload` from `offset`. */
  data(walStart: bigint, payload: Buffer, offset: number): void;
  /** A primary keepalive: the server's WAL end, and whether it asks for a status update now. */
  keepalive(walEnd: bigint, replyRequested: boolean): void;
  /** The stream ended: `error` unless it was stopped. Called once. */
  end(error?: Error): void;
}

/** The parts of `pg`'s Connection this stream uses (sendCopyFromChunk and the CopyBothResponse event are not in its types). */
interface ReplicationConnection {
  readonly stream: Duplex;
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  once(event: 'replicationStart', listener: () => void): unknown;
  removeListener(event: 'replicationStart', listener: () => void): unknown;
}

export class ReplicationStream implements pg.Submittable {
  readonly #sql: string;
  readonly #handlers: ReplicationHandlers;
  readonly #started: Promise<void>;
  #resolveStarted!: () => void;
  #rejectStarted!: (error: Error) => void;
  #connection: ReplicationConnection | undefined;
  #ended = false;
  #stopping = false;
  #paused = false;

  constructor(sql: string, handlers: ReplicationHandlers) {
    this.#sql = sql;
    this.#handlers = handlers;
    this.#started = new Promise((resolve, reject) => {
      this.#resolveStarted = resolve;
      this.#rejectStarted = reject;
    });
    this.#started.catch(() => {});
  }

  /** Resolves once the server switched to streaming (CopyBothResponse); rejects with its refusal. */
  get started(): Promise<void> {
    return this.#started;
  }

  get paused(): boolean {
    return this.#paused;
  }

  submit(connection: pg.Connection): void {
    const c = connection as unknown as ReplicationConnection;
    this.#connection = c;
    c.once('replicationStart', this.#onStart);
    c.query(this.#sql);
  }

  readonly #onStart = (): void => this.#resolveStarted();

  handleCopyData(message: { readonly chunk: Buffer }): void {
    const chunk = message.chunk;
    const kind = chunk[0];
    if (kind === 0x77 /* w: XLogData */) {
      this.#handlers.data(chunk.readBigUInt64BE(1), chunk, 25);
    } else if (kind === 0x6b /* k: primary keepalive */) {
      this.#handlers.keepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    }
  }

  handleError(error: Error): void {
    this.#rejectStarted(error);
    this.#finish(error);
  }

  handleReadyForQuery(): void {
    this.#rejectStarted(new Error('the server ended replication before it started'));
    this.#finish(this.#stopping ? undefined : new Error('the server ended replication'));
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}

  /**
   * Sends a standby status update: everything before `flushed` is processed (for a logical slot,
   * its `confirmed_flush_lsn` moves there). `reply` asks the server to answer with a keepalive.
   */
  sendStatus(flushed: bigint, reply = false): void {
    const c = this.#connection;
    if (c === undefined || this.#ended) return;
    const update = Buffer.alloc(34);
    update[0] = 0x72; // r
    update.writeBigUInt64BE(flushed, 1); // written
    update.writeBigUInt64BE(flushed, 9); // flushed
    update.writeBigUInt64BE(flushed, 17); // applied
    update.writeBigInt64BE(BigInt(Date.now() - POSTGRES_EPOCH_MS) * 1000n, 25);
    update[33] = reply ? 1 : 0;
    c.sendCopyFromChunk(update);
  }

  /** Stops reading the socket (the server waits once its buffers are full). */
  pause(): void {
    if (this.#paused || this.#connection === undefined) return;
    this.#paused = true;
    this.#connection.stream.pause();
  }

  resume(): void {
    if (!this.#paused || this.#connection === undefined) return;
    this.#paused = false;
    this.#connection.stream.resume();
  }

  /** Ends the stream from this side (CopyDone); the server answers and `end` is called without an error. */
  stop(): void {
    if (this.#ended || this.#stopping) return;
    this.#stopping = true;
    this.resume();
    this.#connection?.endCopyFrom();
  }

  #finish(error: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#connection?.removeListener('replicationStart', this.#onStart);
    this.#handlers.end(error);
  }
}

/** Quotes an SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * The session settings of the replication connection: the text forms `values.ts` reads
 * (ISO dates in UTC, hex bytea, postgres intervals), whatever the server's defaults are.
 */
export const REPLICATION_SESSION_OPTIONS = '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex';
