import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createPostgresChangeSource, createSqliteChangeRelay, installSqliteChangeTriggers } from '@switchboard/changes';
import type { Broker, DeadLetterStore } from '@switchboard/core';
import { createSqliteOutbox } from '@switchboard/sqlite';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { ServiceConfig } from './config.js';
import { serviceB } from './contracts.js';

/** ServiceB's table of names. Saving is all B's code does: the committed row change is the event. */
export interface Names {
  /** `sqlite` or `postgres`. */
  readonly engine: 'sqlite' | 'postgres';
  /** Inserts the name (or counts one more save of it) and answers its row. */
  save(name: string): Promise<{ id: string; saves: number }>;
  close(): Promise<void>;
}

export interface NamesOptions {
  readonly config: ServiceConfig;
  /** Where the `name.saved` events go: B's broker. */
  readonly broker: Broker;
  /** Where a row that fails the contract's schema goes. */
  readonly deadLetters: DeadLetterStore;
}

/**
 * Opens the names table where `config.changes` says and starts what turns its committed changes
 * into `name.saved` events: on SQLite (default), triggers that write each change into B's outbox in
 * the row's own transaction, and the outbox's relay; on PostgreSQL, a change source reading the
 * table's changes by logical replication (slot and publication `service_b_names`, created at first
 * start; the server needs `wal_level = logical`).
 */
export async function openNames(options: NamesOptions): Promise<Names> {
  const { config } = options;
  if (config.changes === 'sqlite') return openSqliteNames(options);
  if (/^postgres(ql)?:\/\//.test(config.changes)) return openPostgresNames(options);
  throw new Error(`SWITCHBOARD_CHANGES must be sqlite or a postgres:// URL, got ${config.changes}`);
}

function openSqliteNames({ config, broker, deadLetters }: NamesOptions): Names {
  const db = new Database(join(config.dataDir, 'service-b-names.db'));
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE IF NOT EXISTS names (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, saves INTEGER NOT NULL, saved_at TEXT NOT NULL)`);
  const outbox = createSqliteOutbox({ database: db });
  installSqliteChangeTriggers(db, serviceB); // idempotent: current triggers are left as they are
  const relay = createSqliteChangeRelay({ outbox, broker, contracts: serviceB, deadLetters });
  relay.start();
  const upsert = db.prepare<[string, string, string], { id: string; saves: number }>(
    `INSERT INTO names (id, name, saves, saved_at) VALUES (?, ?, 1, ?)
     ON CONFLICT (name) DO UPDATE SET saves = saves + 1, saved_at = excluded.saved_at
     RETURNING id, saves`,
  );
  return {
    engine: 'sqlite',
    save: async (name) => upsert.get(randomUUID(), name, new Date().toISOString()) as { id: string; saves: number },
    async close() {
      await relay.stop();
      await outbox.close();
      db.close();
    },
  };
}

async function openPostgresNames({ config, broker, deadLetters }: NamesOptions): Promise<Names> {
  const pool = new pg.Pool({ connectionString: config.changes, max: 4 });
  try {
    await pool.query(`CREATE TABLE IF NOT EXISTS names (
      id text PRIMARY KEY, name text NOT NULL UNIQUE, saves integer NOT NULL, saved_at timestamptz NOT NULL)`);
  } catch (error) {
    await pool.end();
    throw new Error(`cannot create the names table in PostgreSQL (${redact(config.changes)}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  const source = createPostgresChangeSource({
    connection: config.changes,
    contract: serviceB,
    broker,
    slot: 'service_b_names',
    publication: 'service_b_names',
    create: true,
    deadLetters,
  });
  try {
    await source.start();
  } catch (error) {
    await pool.end();
    const detail = (error as { detail?: string }).detail ?? (error as Error).message;
    throw new Error(`cannot read the changes of the names table from PostgreSQL (${redact(config.changes)}): ${detail}`, { cause: error });
  }
  return {
    engine: 'postgres',
    async save(name) {
      const { rows } = await pool.query<{ id: string; saves: number }>(
        `INSERT INTO names (id, name, saves, saved_at) VALUES ($1, $2, 1, now())
         ON CONFLICT (name) DO UPDATE SET saves = names.saves + 1, saved_at = excluded.saved_at
         RETURNING id, saves`,
        [randomUUID(), name],
      );
      return rows[0] as { id: string; saves: number };
    },
    async close() {
      await source.close();
      await pool.end();
    },
  };
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the SWITCHBOARD_CHANGES URL';
  }
}
