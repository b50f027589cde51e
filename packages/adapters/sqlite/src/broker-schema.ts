import type Database from 'better-sqlite3';

/** A row handed out by a claim. */
export interface ClaimedRow {
  readonly seq: number;
  readonly attempt: number;
  readonly id: string;
  readonly headers: string;
  readonly body: Buffer | string;
  readonly key: string | null;
}

/** One row to insert: a message for one group. */
export type QueueRow = readonly [gid: number, id: string, headers: string, body: Buffer, key: string | null];

export interface BrokerStatements {
  readonly groupsOfTopic: Database.Statement<[string], { gid: number }>;
  readonly declareGroup: Database.Statement<[string, string]>;
  readonly groupId: Database.Statement<[string, string], { gid: number }>;
  /** Inserts rows, up to {@link INSERT_CHUNK} per statement. */
  insert(rows: readonly QueueRow[]): void;
  readonly ready: Database.Statement<[number, number], { one: number }>;
  readonly claim: Database.Statement<{ gid: number; now: number; until: number; limit: number }, ClaimedRow>;
  /** Deletes the rows whose `seq` is in the JSON array, while their attempt is still the one given. */
  readonly ack: Database.Statement<[string, number]>;
  readonly nack: Database.Statement<[number, number, number]>;
}

/** Rows per INSERT statement: one call into SQLite binds them all. */
const INSERT_CHUNK = 32;
const COLUMNS = 5;

/** The queue's columns; every one but `gid` has a default, so a producer names only what it sets. */
const QUEUE_COLUMNS = `(
  seq INTEGER PRIMARY KEY,
  gid INTEGER NOT NULL,
  visible_at INTEGER NOT NULL DEFAULT 0,
  attempt INTEGER NOT NULL DEFAULT 0,
  id TEXT NOT NULL DEFAULT '',
  headers TEXT NOT NULL DEFAULT '{}',
  body BLOB NOT NULL DEFAULT x'',
  key TEXT
)`;

/**
 * The broker's two tables. `groups` lists the consumer groups of each topic; `queue` holds one row
 * per message and group until that group acks it (the layout a foreign producer writes, see
 * `docs/brokers.md`). A row is ready when `visible_at <= now` (ms since the epoch; 0, the
 * default, is ready at once); a claim sets `visible_at` to the end of its lease and increments
 * `attempt`, so an expired lease makes the row ready again (that is how a dead consumer's messages
 * come back), and `(seq, attempt)` names one delivery: a late ack or nack of an older attempt
 * matches nothing.
 */
export function prepareBrokerSchema(db: Database.Database, prefix: string): BrokerStatements {
  const groups = `${prefix}groups`;
  const queue = `${prefix}queue`;
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${groups} (
        gid INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (topic, name)
      );
    `);
    migrateQueue(db, queue);
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${queue} ${QUEUE_COLUMNS};
      CREATE INDEX IF NOT EXISTS ${queue}_order ON ${queue} (gid, seq, visible_at);
    `);
  }).immediate();
  const inserts = new Map<number, Database.Statement<unknown[]>>();
  const insertOf = (count: number): Database.Statement<unknown[]> => {
    let statement = inserts.get(count);
    if (statement === undefined) {
      const values = Array.from({ length: count }, () => '(?, ?, ?, ?, ?)').join(', ');
      statement = db.prepare(`INSERT INTO ${queue} (gid, id, headers, body, key) VALUES ${values}`);
      inserts.set(count, statement);
    }
    return statement;
  };
  return {
    groupsOfTopic: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ?`),
    declareGroup: db.prepare(`INSERT INTO ${groups} (topic, name) VALUES (?, ?) ON CONFLICT DO NOTHING`),
    groupId: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ? AND name = ?`),
    insert(rows) {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const count = Math.min(INSERT_CHUNK, rows.length - i);
        const params: unknown[] = new Array(count * COLUMNS);
        for (let j = 0; j < count; j++) {
          const row = rows[i + j]!;
          for (let c = 0; c < COLUMNS; c++) params[j * COLUMNS + c] = row[c];
        }
        insertOf(count).run(params);
      }
    },
    ready: db.prepare(`SELECT 1 AS one FROM ${queue} WHERE gid = ? AND visible_at <= ? LIMIT 1`),
    claim: db.prepare(
      `UPDATE ${queue} SET visible_at = @until, attempt = attempt + 1
       WHERE seq IN (SELECT seq FROM ${queue} WHERE gid = @gid AND visible_at <= @now ORDER BY seq LIMIT @limit)
       RETURNING seq, attempt, id, headers, body, key`,
    ),
    ack: db.prepare(`DELETE FROM ${queue} WHERE seq IN (SELECT value FROM json_each(?)) AND attempt = ?`),
    nack: db.prepare(`UPDATE ${queue} SET visible_at = ? WHERE seq = ? AND attempt = ?`),
  };
}

/**
 * Queue tables of earlier versions have no column defaults (so a hand-written INSERT had to name
 * every column) and a `created` column: the table is rebuilt in the new layout, every row kept.
 */
function migrateQueue(db: Database.Database, queue: string): void {
  const headers = db.prepare<[string], { dflt_value: string | null }>(`SELECT dflt_value FROM pragma_table_info(?) WHERE name = 'headers'`);
  const column = headers.get(queue);
  if (column === undefined || column.dflt_value !== null) return;
  db.exec(`
    DROP INDEX IF EXISTS ${queue}_order;
    ALTER TABLE ${queue} RENAME TO ${queue}_v1;
    CREATE TABLE ${queue} ${QUEUE_COLUMNS};
    INSERT INTO ${queue} (seq, gid, visible_at, attempt, id, headers, body, key)
      SELECT seq, gid, visible_at, attempt, id, headers, body, key FROM ${queue}_v1;
    DROP TABLE ${queue}_v1;
  `);
}
