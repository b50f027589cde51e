import type Database from 'better-sqlite3';

/** A row handed out by a claim: its message and the attempt this delivery is. */
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

export interface ClaimParams {
  readonly gid: number;
  /** Only rows after this `seq` (0: from the head). */
  readonly after: number;
  readonly now: number;
  readonly limit: number;
}

export interface BrokerStatements {
  readonly groupsOfTopic: Database.Statement<[string], { gid: number }>;
  readonly declareGroup: Database.Statement<[string, string]>;
  readonly groupId: Database.Statement<[string, string], { gid: number }>;
  /** Rows a group has not acknowledged (ready or leased). */
  readonly pending: Database.Statement<[number], { n: number }>;
  /** Inserts rows, up to {@link INSERT_CHUNK} per statement. */
  insert(rows: readonly QueueRow[]): void;
  /** Ready rows of a group in `seq` order, with their messages: a read, outside the write transaction. */
  pick(params: ClaimParams): ClaimedRow[];
  /**
   * Leases picked rows until `until` (in the write transaction): the ones still there and still
   * ready now, with the attempt this delivery is. A row another consumer leased or acked since the
   * pick is left out.
   */
  lease(rows: readonly ClaimedRow[], now: number, until: number): ClaimedRow[];
  /**
   * Deletes the rows whose `seq` is in the JSON array, and their leases. Whoever acks a row has
   * handled its message, so an ack is not checked against the attempt (a nack is).
   */
  ack(seqs: string): void;
  readonly nack: Database.Statement<[number, number, number]>;
}

/** Rows per INSERT statement: one call into SQLite binds them all. */
const INSERT_CHUNK = 32;
const COLUMNS = 5;

/**
 * The queue's columns: a message for one group; every one but `gid` has a default. `seq` is never
 * reused (AUTOINCREMENT), so `(seq, attempt)` can never name a later message.
 */
const QUEUE_COLUMNS = `(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  gid INTEGER NOT NULL,
  id TEXT NOT NULL DEFAULT '',
  headers TEXT NOT NULL DEFAULT '{}',
  body BLOB NOT NULL DEFAULT x'',
  key TEXT
)`;

/**
 * The broker's tables:
 * - `groups` lists the consumer groups of each topic;
 * - `queue` holds one row per message and group until that group acks it: only what was
 *   published (the plain layout a foreign producer writes, see `docs/brokers.md`), never
 *   rewritten, so a claim does not write the message again;
 * - `leases` holds the delivery state of the rows delivered at least once: `visible_at` (the end
 *   of the lease, or when a nacked row is due; ms since the epoch) and `attempt`. A row without a
 *   lease was never delivered and is ready; a row is ready again once its `visible_at` passed
 *   (that is how a dead consumer's messages come back). `(seq, attempt)` names one delivery: a
 *   late nack of an older attempt matches nothing, so it never shortens another consumer's lease.
 */
export function prepareBrokerSchema(db: Database.Database, prefix: string): BrokerStatements {
  const groups = `${prefix}groups`;
  const queue = `${prefix}queue`;
  const leases = `${prefix}leases`;
  db.transaction(() => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${groups} (
        gid INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (topic, name)
      );
      CREATE TABLE IF NOT EXISTS ${leases} (
        seq INTEGER PRIMARY KEY,
        visible_at INTEGER NOT NULL,
        attempt INTEGER NOT NULL
      );
    `);
    migrateQueue(db, queue, leases);
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${queue} ${QUEUE_COLUMNS};
      CREATE INDEX IF NOT EXISTS ${queue}_group ON ${queue} (gid, seq);
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
  const pick = db.prepare<ClaimParams, ClaimedRow>(
    `SELECT q.seq, coalesce(l.attempt, 0) + 1 AS attempt, q.id, q.headers, q.body, q.key
     FROM ${queue} q LEFT JOIN ${leases} l ON l.seq = q.seq
     WHERE q.gid = @gid AND q.seq > @after AND (l.visible_at IS NULL OR l.visible_at <= @now)
     ORDER BY q.seq LIMIT @limit`,
  );
  const lease = db.prepare<[number, string, number], { seq: number; attempt: number }>(
    `INSERT INTO ${leases} (seq, visible_at, attempt)
     SELECT j.value, ?, 1 FROM json_each(?) j WHERE EXISTS (SELECT 1 FROM ${queue} q WHERE q.seq = j.value)
     ON CONFLICT (seq) DO UPDATE SET visible_at = excluded.visible_at, attempt = attempt + 1 WHERE visible_at <= ?
     RETURNING seq, attempt`,
  );
  const ackMessages = db.prepare<[string]>(`DELETE FROM ${queue} WHERE seq IN (SELECT value FROM json_each(?))`);
  const ackLeases = db.prepare<[string]>(`DELETE FROM ${leases} WHERE seq IN (SELECT value FROM json_each(?))`);
  return {
    groupsOfTopic: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ?`),
    declareGroup: db.prepare(`INSERT INTO ${groups} (topic, name) VALUES (?, ?) ON CONFLICT DO NOTHING`),
    groupId: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ? AND name = ?`),
    pending: db.prepare(`SELECT count(*) AS n FROM ${queue} WHERE gid = ?`),
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
    pick: (params) => pick.all(params),
    lease(rows, now, until) {
      if (rows.length === 0) return [];
      const leased = lease.all(until, JSON.stringify(rows.map((row) => row.seq)), now);
      if (leased.length === rows.length && leased.every((row, i) => row.attempt === rows[i]!.attempt)) return rows as ClaimedRow[];
      const attempts = new Map(leased.map((row) => [row.seq, row.attempt]));
      const kept: ClaimedRow[] = [];
      for (const row of rows) {
        const attempt = attempts.get(row.seq);
        if (attempt !== undefined) kept.push(attempt === row.attempt ? row : { ...row, attempt });
      }
      return kept;
    },
    ack(seqs) {
      ackMessages.run(seqs);
      ackLeases.run(seqs);
    },
    nack: db.prepare(`UPDATE ${leases} SET visible_at = ? WHERE seq = ? AND attempt = ?`),
  };
}

/**
 * Queue tables of earlier versions kept the delivery state in the row itself (`visible_at`,
 * `attempt`, rewritten by every claim) and had no column defaults: the table is rebuilt in the
 * new layout, every row kept, the state of the rows delivered before moved to `leases`.
 */
function migrateQueue(db: Database.Database, queue: string, leases: string): void {
  const column = db.prepare<[string], { name: string }>(`SELECT name FROM pragma_table_info(?) WHERE name = 'attempt'`);
  if (column.get(queue) === undefined) return;
  db.exec(`
    DROP INDEX IF EXISTS ${queue}_order;
    ALTER TABLE ${queue} RENAME TO ${queue}_v1;
    CREATE TABLE ${queue} ${QUEUE_COLUMNS};
    INSERT INTO ${queue} (seq, gid, id, headers, body, key) SELECT seq, gid, id, headers, body, key FROM ${queue}_v1;
    INSERT INTO ${leases} (seq, visible_at, attempt) SELECT seq, visible_at, attempt FROM ${queue}_v1 WHERE attempt > 0;
    DROP TABLE ${queue}_v1;
  `);
}
