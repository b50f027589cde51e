import { setTimeout as sleep, setImmediate as yieldTurn } from 'node:timers/promises';
import { createSqliteBroker, openDatabase } from '@switchboard/sqlite';
import type Database from 'better-sqlite3';
import { BrokerDriver, type ConsumeOptions, type DriverSpec, type QueueDriver } from '../queue-driver.js';
import { RAW_SQLITE_IDLE_POLL_MS, removeDatabase } from '../sqlite-files.js';

const TABLE_PREFIX = 'sb_broker_';

function open(spec: DriverSpec): Database.Database {
  return openDatabase(spec.target, { synchronous: spec.synchronous ?? 'NORMAL' });
}

/**
 * The bare two-process SQLite queue: one table per topic, the producer inserts a batch per
 * transaction, the consumer reads up to `maxInFlight` rows in order, handles them and deletes the
 * batch in one statement, and polls every `RAW_SQLITE_IDLE_POLL_MS` when the table is empty.
 * Same pragmas as the broker (WAL, busy timeout, the chosen `synchronous`).
 */
export class RawSqliteDriver implements QueueDriver {
  readonly #spec: DriverSpec;
  readonly #db: Database.Database;
  readonly #inserts = new Map<string, Database.Statement<[Buffer]>>();

  constructor(spec: DriverSpec) {
    this.#spec = spec;
    this.#db = open(spec);
  }

  #table(topic: string): string {
    return `bare_${topic.replace(/[^A-Za-z0-9_]/g, '_')}`;
  }

  async setup(topic: string): Promise<void> {
    this.#db.exec(`CREATE TABLE IF NOT EXISTS ${this.#table(topic)} (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)`);
  }

  #insert(topic: string): Database.Statement<[Buffer]> {
    let insert = this.#inserts.get(topic);
    if (insert === undefined) {
      insert = this.#db.prepare<[Buffer]>(`INSERT INTO ${this.#table(topic)} (body) VALUES (?)`);
      this.#inserts.set(topic, insert);
    }
    return insert;
  }

  async publish(topic: string, body: Buffer): Promise<void> {
    this.#insert(topic).run(body);
  }

  async publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    const insert = this.#insert(topic);
    this.#db
      .transaction(() => {
        for (const body of bodies) insert.run(body);
      })
      .immediate();
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const table = this.#table(topic);
    const select = this.#db.prepare<[number], { seq: number; body: Buffer }>(`SELECT seq, body FROM ${table} ORDER BY seq LIMIT ?`);
    const remove = this.#db.prepare<[number]>(`DELETE FROM ${table} WHERE seq <= ?`);
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        const rows = select.all(options.maxInFlight);
        const last = rows.at(-1);
        if (last === undefined) {
          await sleep(RAW_SQLITE_IDLE_POLL_MS);
          continue;
        }
        for (const row of rows) onMessage(row.body);
        remove.run(last.seq);
        await yieldTurn();
      }
    })().catch((error: unknown) => options.onError?.(error));
    return async () => {
      stopping = true;
      await loop;
    };
  }

  async cleanup(topic: string): Promise<void> {
    this.#inserts.delete(topic);
    this.#db.exec(`DROP TABLE IF EXISTS ${this.#table(topic)}`);
  }

  async dropScope(): Promise<void> {
    await removeDatabase(this.#spec.target);
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

/** The Switchboard SQLite broker on the same file, defaults except `synchronous`. */
export function createSwitchboardSqliteDriver(spec: DriverSpec): BrokerDriver {
  const broker = createSqliteBroker({ path: spec.target, synchronous: spec.synchronous ?? 'NORMAL', prefix: TABLE_PREFIX });
  return new BrokerDriver(broker, {
    async cleanup(topic) {
      const db = open(spec);
      try {
        db.prepare(`DELETE FROM ${TABLE_PREFIX}queue WHERE gid IN (SELECT gid FROM ${TABLE_PREFIX}groups WHERE topic = ?)`).run(topic);
      } finally {
        db.close();
      }
    },
    dropScope: () => removeDatabase(spec.target),
  });
}
