import { createPostgresBroker, createPostgresReceiptStore } from '@switchboard/postgres';
import pg from 'pg';
import { BrokerDriver, type ConsumeOptions, type DriverSpec, nextMessageId, type QueueDriver } from '../queue-driver.js';
import type { NativeStores } from './messaging.js';

const SB_PREFIX = 'switchboard_';
/** Fallback poll when no notification arrives, as the adapter's default `pollIntervalMs`. */
const POLL_MS = 500;

function schemaOf(spec: DriverSpec): string {
  return `bench_${spec.scope.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/**
 * Raw `pg` doing the classic queue: a table per topic, `INSERT` (plus a `pg_notify`, as the
 * adapter sends one) resolved on commit, and a consumer that, in one transaction, selects up to
 * `maxInFlight` rows `FOR UPDATE SKIP LOCKED` in order, handles them, deletes them and commits;
 * it waits on LISTEN (or a 500 ms poll) when the table is empty. Pool of 10 connections, as the
 * adapter's default.
 */
export class RawPostgresDriver implements QueueDriver {
  readonly #pool: pg.Pool;
  readonly #schema: string;

  constructor(spec: DriverSpec) {
    this.#schema = schemaOf(spec);
    this.#pool = new pg.Pool({ connectionString: spec.target, max: 10 });
    this.#pool.on('error', () => {});
  }

  #table(topic: string): string {
    return `"${this.#schema}"."bare_${topic.toLowerCase().replace(/[^a-z0-9_]/g, '_')}"`;
  }

  #channel(topic: string): string {
    return `bare_${topic.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 60);
  }

  async setup(topic: string): Promise<void> {
    await this.#pool.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
    await this.#pool.query(
      `CREATE TABLE IF NOT EXISTS ${this.#table(topic)} (seq bigserial PRIMARY KEY, id text NOT NULL, body bytea NOT NULL)`,
    );
  }

  async publish(topic: string, body: Buffer): Promise<void> {
    await this.#pool.query(
      `WITH m AS (INSERT INTO ${this.#table(topic)} (id, body) VALUES ($1, $2) RETURNING 1) SELECT pg_notify($3, '') FROM m`,
      [nextMessageId(), body, this.#channel(topic)],
    );
  }

  async publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    for (let i = 0; i < bodies.length; i += 1000) {
      const chunk = bodies.slice(i, i + 1000);
      await this.#pool.query(
        `WITH m AS (INSERT INTO ${this.#table(topic)} (id, body) SELECT * FROM unnest($1::text[], $2::bytea[]) RETURNING 1)
         SELECT pg_notify($3, '') FROM (SELECT 1 FROM m LIMIT 1) AS one`,
        [chunk.map(() => nextMessageId()), chunk, this.#channel(topic)],
      );
    }
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const table = this.#table(topic);
    const listener = await this.#pool.connect();
    const worker = await this.#pool.connect();
    let notified = false;
    let wake: (() => void) | undefined;
    listener.on('notification', () => {
      notified = true;
      wake?.();
    });
    await listener.query(`LISTEN "${this.#channel(topic)}"`);
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        notified = false;
        await worker.query('BEGIN');
        const { rows } = await worker.query<{ seq: string; body: Buffer }>(
          `SELECT seq, body FROM ${table} ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [options.maxInFlight],
        );
        for (const row of rows) onMessage(row.body);
        if (rows.length > 0) {
          await worker.query(`DELETE FROM ${table} WHERE seq = ANY($1::bigint[])`, [rows.map((row) => row.seq)]);
        }
        await worker.query('COMMIT');
        if (rows.length === 0 && !notified && !stopping) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    })().catch((error: unknown) => options.onError?.(error));
    return async () => {
      stopping = true;
      wake?.();
      await loop;
      await listener.query(`UNLISTEN "${this.#channel(topic)}"`).catch(() => {});
      listener.release();
      worker.release();
    };
  }

  async cleanup(topic: string): Promise<void> {
    await this.#pool.query(`DROP TABLE IF EXISTS ${this.#table(topic)}`);
  }

  async dropScope(): Promise<void> {
    await dropSchema(this.#pool, this.#schema);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** The Switchboard PostgreSQL adapter with its defaults, in the run's own schema. */
export function createSwitchboardPostgresDriver(spec: DriverSpec): BrokerDriver {
  const schema = schemaOf(spec);
  const broker = createPostgresBroker({ url: spec.target, schema, prefix: SB_PREFIX });
  const admin = () => new pg.Pool({ connectionString: spec.target, max: 1 });
  return new BrokerDriver(broker, {
    async cleanup(topic) {
      const pool = admin();
      try {
        await pool.query(
          `DELETE FROM "${schema}"."${SB_PREFIX}queue" WHERE gid IN (SELECT gid FROM "${schema}"."${SB_PREFIX}groups" WHERE topic = $1)`,
          [topic],
        );
        await pool.query(`DELETE FROM "${schema}"."${SB_PREFIX}groups" WHERE topic = $1`, [topic]);
      } finally {
        await pool.end();
      }
    },
    async dropScope() {
      const pool = admin();
      try {
        await dropSchema(pool, schema);
      } finally {
        await pool.end();
      }
    },
  });
}

/** Receipts and inbox of the messaging `full-native` mode in PostgreSQL, in the run's schema (dropped with it). */
export function postgresNativeStores(spec: DriverSpec): NativeStores {
  const schema = schemaOf(spec);
  return {
    receipts: () => {
      const url = new URL(spec.target);
      url.searchParams.set('options', `-c search_path=${schema}`);
      return createPostgresReceiptStore({ connectionString: url.toString() });
    },
    drop: async () => {},
  };
}
