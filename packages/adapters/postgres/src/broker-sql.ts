import { createHash } from 'node:crypto';

/**
 * The broker's tables and statements. Three tables under one schema and prefix:
 * - `<prefix>messages`: one row per published message (body as bytea, headers as jsonb).
 * - `<prefix>groups`: the declared consumer groups of each topic.
 * - `<prefix>deliveries`: one row per (group, message) still to be settled, with its lease
 *   (`visible_at`) and attempt count. Acked rows are deleted; a message row goes once no group
 *   holds a delivery for it.
 */
export interface BrokerTables {
  readonly messages: string;
  readonly groups: string;
  readonly deliveries: string;
  /** LISTEN/NOTIFY channel (at most 63 bytes), payload = topic. */
  readonly channel: string;
  /** Key of the advisory lock taken while the schema is created. */
  readonly lockName: string;
  readonly schemaSql: readonly string[];
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

export function isIdentifier(value: string): boolean {
  return IDENTIFIER.test(value);
}

export function brokerTables(schema: string, prefix: string): BrokerTables {
  const name = (table: string) => `"${schema}"."${prefix}${table}"`;
  const messages = name('messages');
  const groups = name('groups');
  const deliveries = name('deliveries');
  const hash = createHash('sha256').update(`${schema}.${prefix}`).digest('hex').slice(0, 16);
  return {
    messages,
    groups,
    deliveries,
    channel: `switchboard_${hash}`,
    lockName: `switchboard-broker:${schema}.${prefix}`,
    schemaSql: [
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      `CREATE TABLE IF NOT EXISTS ${messages} (
        seq bigserial PRIMARY KEY,
        id text NOT NULL,
        topic text NOT NULL,
        headers jsonb NOT NULL,
        body bytea NOT NULL,
        key text,
        published_at timestamptz NOT NULL DEFAULT now()
      )`,
      `CREATE TABLE IF NOT EXISTS ${groups} (
        topic text NOT NULL,
        group_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (topic, group_name)
      )`,
      `CREATE TABLE IF NOT EXISTS ${deliveries} (
        topic text NOT NULL,
        group_name text NOT NULL,
        seq bigint NOT NULL,
        visible_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        PRIMARY KEY (topic, group_name, seq)
      )`,
      `CREATE INDEX IF NOT EXISTS "${prefix}deliveries_seq" ON ${deliveries} (seq)`,
    ],
  };
}

/**
 * Inserts a batch in publish order (one statement, one transaction): the messages of topics that
 * have at least one group, a delivery row per group, and a NOTIFY per topic at commit.
 * Parameters: ids, topics, headers (json text), bodies, keys (arrays of one length), channel.
 */
export function publishSql(t: BrokerTables): string {
  return `WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::bytea[], $5::text[])
        WITH ORDINALITY AS u(id, topic, headers, body, key, n)
    ), m AS (
      INSERT INTO ${t.messages} (id, topic, headers, body, key)
      SELECT id, topic, headers, body, key FROM input
      WHERE EXISTS (SELECT 1 FROM ${t.groups} g WHERE g.topic = input.topic)
      ORDER BY n
      RETURNING seq, topic
    ), d AS (
      INSERT INTO ${t.deliveries} (topic, group_name, seq)
      SELECT g.topic, g.group_name, m.seq FROM m JOIN ${t.groups} g ON g.topic = m.topic
      RETURNING topic
    )
    SELECT pg_notify($6, topic) FROM (SELECT DISTINCT topic FROM d) AS notified`;
}

/**
 * Claims up to $3 visible deliveries of ($1 topic, $2 group) in publish order, skipping rows other
 * consumers hold, and leases them for $4 ms (`visible_at`), counting the attempt.
 */
export function claimSql(t: BrokerTables): string {
  return `WITH c AS (
      SELECT seq FROM ${t.deliveries}
      WHERE topic = $1 AND group_name = $2 AND visible_at <= clock_timestamp()
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), u AS (
      UPDATE ${t.deliveries} d
      SET visible_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000), attempts = d.attempts + 1
      WHERE d.topic = $1 AND d.group_name = $2 AND d.seq = ANY(ARRAY(SELECT seq FROM c))
      RETURNING d.seq, d.attempts
    )
    SELECT u.seq::text AS seq, u.attempts, m.id, m.headers, m.body, m.key
    FROM u JOIN ${t.messages} m ON m.seq = u.seq
    ORDER BY u.seq`;
}

/** Deletes acked deliveries ($1 topic, $2 group, $3 seqs). */
export function ackSql(t: BrokerTables): string {
  return `DELETE FROM ${t.deliveries} WHERE topic = $1 AND group_name = $2 AND seq = ANY($3::bigint[]) RETURNING seq`;
}

/** Deletes the messages among $1 seqs that no group holds any more. */
export function sweepSql(t: BrokerTables): string {
  return `DELETE FROM ${t.messages} m WHERE m.seq = ANY($1::bigint[])
    AND NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.seq = m.seq)`;
}

/** Deletes up to 1000 messages left without deliveries (a process stopped between an ack and its sweep). */
export function sweepOrphansSql(t: BrokerTables): string {
  return `DELETE FROM ${t.messages} WHERE seq IN (
    SELECT m.seq FROM ${t.messages} m
    WHERE NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.seq = m.seq)
    ORDER BY m.seq LIMIT 1000)`;
}

/**
 * Gives a delivery back ($1 topic, $2 group, $3 seq) to be visible after $4 ms, only while the
 * lease is still this attempt's ($5): a late nack never shortens another consumer's lease.
 */
export function nackSql(t: BrokerTables): string {
  return `UPDATE ${t.deliveries}
    SET visible_at = clock_timestamp() + make_interval(secs => $4::double precision / 1000)
    WHERE topic = $1 AND group_name = $2 AND seq = $3 AND attempts = $5`;
}

export function declareGroupSql(t: BrokerTables): string {
  return `INSERT INTO ${t.groups} (topic, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`;
}
