import { SwitchboardError } from '@switchboard/core';
import type Database from 'better-sqlite3';

/** A row handed out by a claim. */
export interface ClaimedRow {
  readonly seq: number;
  readonly attempt: number;
  readonly id: string;
  readonly headers: string;
  readonly body: Buffer;
  readonly key: string | null;
}

export interface BrokerStatements {
  readonly groupsOfTopic: Database.Statement<[string], { gid: number }>;
  readonly declareGroup: Database.Statement<[string, string]>;
  readonly groupId: Database.Statement<[string, string], { gid: number }>;
  readonly insert: Database.Statement<[number, string, string, Buffer, string | null, number]>;
  readonly ready: Database.Statement<[number, number], { one: number }>;
  readonly claim: Database.Statement<{ gid: number; now: number; until: number; limit: number }, ClaimedRow>;
  readonly ack: Database.Statement<[number, number]>;
  readonly nack: Database.Statement<[number, number, number]>;
}

/**
 * The broker's two tables. `groups` lists the consumer groups of each topic; `queue` holds one row
 * per message and group until that group acks it. A row is ready when `visible_at <= now`; a claim
 * sets `visible_at` to the end of its lease and increments `attempt`, so an expired lease makes the
 * row ready again (that is how a dead consumer's messages come back), and `(seq, attempt)` names one
 * delivery: a late ack or nack of an older attempt matches nothing.
 */
export function prepareBrokerSchema(db: Database.Database, prefix: string): BrokerStatements {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(prefix)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `table prefix "${prefix}" must be letters, digits and _` });
  }
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
      CREATE TABLE IF NOT EXISTS ${queue} (
        seq INTEGER PRIMARY KEY,
        gid INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        id TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        key TEXT,
        created INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS ${queue}_order ON ${queue} (gid, seq, visible_at);
    `);
  }).immediate();
  return {
    groupsOfTopic: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ?`),
    declareGroup: db.prepare(`INSERT INTO ${groups} (topic, name) VALUES (?, ?) ON CONFLICT DO NOTHING`),
    groupId: db.prepare(`SELECT gid FROM ${groups} WHERE topic = ? AND name = ?`),
    insert: db.prepare(`INSERT INTO ${queue} (gid, visible_at, attempt, id, headers, body, key, created) VALUES (?, 0, 0, ?, ?, ?, ?, ?)`),
    ready: db.prepare(`SELECT 1 AS one FROM ${queue} WHERE gid = ? AND visible_at <= ? LIMIT 1`),
    claim: db.prepare(
      `UPDATE ${queue} SET visible_at = @until, attempt = attempt + 1
       WHERE seq IN (SELECT seq FROM ${queue} WHERE gid = @gid AND visible_at <= @now ORDER BY seq LIMIT @limit)
       RETURNING seq, attempt, id, headers, body, key`,
    ),
    ack: db.prepare(`DELETE FROM ${queue} WHERE seq = ? AND attempt = ?`),
    nack: db.prepare(`UPDATE ${queue} SET visible_at = ? WHERE seq = ? AND attempt = ?`),
  };
}
