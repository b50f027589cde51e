import { createHash } from 'node:crypto';

/**
 * The broker's tables and statements. Three tables under one schema and prefix:
 * - `<prefix>messages`: one row per published message (body as bytea, headers as jsonb).
 * - `<prefix>groups`: the declared consumer groups of each topic.
 * - `<prefix>deliveries`: one row per (group, message) still to be settled, with its lease
 *   (`visible_at`) and attempt count. Acked rows are deleted; a message row goes once no group
 *   holds a delivery for it.
 *
 * Indexes on the deliveries, besides the primary key (topic, group, seq) that acks and nacks use:
 * - `fresh`: never-claimed rows (`attempts = 0`) per group in `seq` order. A claim reads its
 *   head; a claimed row leaves it, so leased and delayed rows are not walked through again.
 * - `retry`: claimed rows (`attempts > 0`) per group by `visible_at`, so the ready ones are found
 *   without scanning leases that have not run out.
 * - `seq_hash`: "does any group still hold message N", for deleting messages. A hash index cannot
 *   hand rows out in `seq` order, so the planner never takes it for a claim (a b-tree on `seq`
 *   led claims through every other topic's rows once the table held several topics).
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
  readonly statements: BrokerStatements;
}

/** A named statement: prepared once per pooled connection, then only bound and executed. */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export interface BrokerStatements {
  readonly publish: Statement;
  readonly declareGroup: Statement;
  readonly claim: Statement;
  readonly settle: Statement;
  readonly sweepOrphans: Statement;
  /** Refreshes the planner statistics of the message and delivery tables. */
  readonly analyze: string;
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
  const tables = { messages, groups, deliveries };
  const statement = (kind: string, text: string): Statement => ({ name: `sb_${hash}_${kind}`, text });
  return {
    ...tables,
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
      `CREATE INDEX IF NOT EXISTS "${prefix}deliveries_fresh" ON ${deliveries} (topic, group_name, seq) WHERE attempts = 0`,
      `CREATE INDEX IF NOT EXISTS "${prefix}deliveries_retry" ON ${deliveries} (topic, group_name, visible_at) WHERE attempts > 0`,
      `CREATE INDEX IF NOT EXISTS "${prefix}deliveries_seq_hash" ON ${deliveries} USING hash (seq)`,
      // Tables made by earlier versions have a b-tree on seq alone.
      `DROP INDEX IF EXISTS "${schema}"."${prefix}deliveries_seq"`,
    ],
    statements: {
      publish: statement('publish', publishSql(tables)),
      declareGroup: statement('declare_group', declareGroupSql(tables)),
      claim: statement('claim', claimSql(tables)),
      settle: statement('settle', settleSql(tables)),
      sweepOrphans: statement('sweep_orphans', sweepOrphansSql(tables)),
      analyze: `ANALYZE ${messages}, ${deliveries}`,
    },
  };
}

type Tables = Pick<BrokerTables, 'messages' | 'groups' | 'deliveries'>;

/**
 * Inserts a batch in publish order (one statement, one transaction): the messages of topics that
 * have at least one group, a delivery row per group, and a NOTIFY per topic at commit.
 * Parameters: ids, topics, headers (json text), bodies, keys (arrays of one length), channel.
 */
function publishSql(t: Tables): string {
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
 * Claims up to $3 ready deliveries of ($1 topic, $2 group) in publish order, skipping rows other
 * consumers hold, and leases them for $4 ms (`visible_at`), counting the attempt. Ready is either
 * never claimed (head of the `fresh` index) or claimed before and visible again (the `retry`
 * index); both heads are locked, and the lowest $3 seqs of the two are updated by ctid.
 * `now()` (the statement's transaction time) keeps the condition usable by the index.
 */
function claimSql(t: Tables): string {
  return `WITH retry AS (
      SELECT ctid, seq FROM ${t.deliveries}
      WHERE topic = $1 AND group_name = $2 AND attempts > 0 AND visible_at <= now()
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), fresh AS (
      SELECT ctid, seq FROM ${t.deliveries}
      WHERE topic = $1 AND group_name = $2 AND attempts = 0
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), picked AS (
      SELECT ctid FROM (SELECT ctid, seq FROM retry UNION ALL SELECT ctid, seq FROM fresh) AS ready
      ORDER BY seq
      LIMIT $3
    ), u AS (
      UPDATE ${t.deliveries} d
      SET visible_at = now() + make_interval(secs => $4::double precision / 1000), attempts = d.attempts + 1
      WHERE d.ctid = ANY(ARRAY(SELECT ctid FROM picked))
      RETURNING d.seq, d.attempts
    )
    SELECT u.seq::text AS seq, u.attempts, m.id, m.headers, m.body, m.key
    FROM u JOIN ${t.messages} m ON m.seq = u.seq
    ORDER BY u.seq`;
}

/**
 * Settles a batch of one group ($1 topic, $2 group) in one statement:
 * - acks: deletes the deliveries $3 (seqs), then those of their messages no other group holds;
 * - nacks: makes the deliveries $4 (seqs) visible after $5 ms each, only while the lease is still
 *   the nacked attempt's ($6): a late nack never shortens another consumer's lease.
 * `OFFSET 0` keeps the NOT EXISTS a per-message probe of `seq_hash`: as an anti-join, a plan
 * made while the table looked empty can scan all of it.
 * When two groups ack one message at the same moment, each statement still sees the other's row
 * and the message stays; the periodic sweep deletes it.
 */
function settleSql(t: Tables): string {
  return `WITH acked AS (
      DELETE FROM ${t.deliveries}
      WHERE topic = $1 AND group_name = $2 AND seq = ANY($3::bigint[])
      RETURNING seq
    ), nacked AS (
      UPDATE ${t.deliveries} d
      SET visible_at = clock_timestamp() + make_interval(secs => n.delay_ms / 1000)
      FROM unnest($4::bigint[], $5::double precision[], $6::integer[]) AS n(seq, delay_ms, attempts)
      WHERE d.topic = $1 AND d.group_name = $2 AND d.seq = n.seq AND d.attempts = n.attempts
      RETURNING d.seq
    ), swept AS (
      DELETE FROM ${t.messages} m
      WHERE m.seq IN (SELECT seq FROM acked)
        AND NOT EXISTS (
          SELECT 1 FROM ${t.deliveries} x WHERE x.seq = m.seq AND (x.topic <> $1 OR x.group_name <> $2) OFFSET 0
        )
      RETURNING m.seq
    )
    SELECT (SELECT count(*) FROM acked)::int AS acked, (SELECT count(*) FROM nacked)::int AS nacked,
      (SELECT count(*) FROM swept)::int AS swept`;
}

/** Deletes up to 1000 messages no group holds any more (left when two groups acked them at the same moment). */
function sweepOrphansSql(t: Tables): string {
  return `DELETE FROM ${t.messages} WHERE seq IN (
    SELECT m.seq FROM ${t.messages} m
    WHERE NOT EXISTS (SELECT 1 FROM ${t.deliveries} d WHERE d.seq = m.seq)
    ORDER BY m.seq LIMIT 1000)`;
}

function declareGroupSql(t: Tables): string {
  return `INSERT INTO ${t.groups} (topic, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`;
}
