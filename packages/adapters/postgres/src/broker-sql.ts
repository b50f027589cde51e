import { createHash } from 'node:crypto';

/**
 * The broker's tables and statements, under one schema and prefix:
 * - `<prefix>groups`: the declared consumer groups of each topic, each with a number (`gid`).
 * - `<prefix>queue`: one row per message and group until that group acks it, in the plain layout a
 *   foreign producer writes by hand (see `docs/brokers.md`): `gid`, transport `id`, `headers`
 *   (a JSON object), `body`, ordering `key`, and the delivery state: `visible_at` (ready when in
 *   the past) and `attempts`. A claim leases rows by moving `visible_at` to the end of the lease
 *   and counting the attempt; an ack deletes the row.
 *
 * Only the primary key (gid, seq) is indexed, and the table keeps half of each page free
 * (`fillfactor = 50`): a claim changes no indexed column, so its UPDATE is a heap-only (HOT)
 * update in the same page, with no index entry written.
 */
export interface BrokerTables {
  readonly groups: string;
  readonly queue: string;
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
  /** Refreshes the planner statistics of the queue. */
  readonly analyze: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/;

export function isIdentifier(value: string): boolean {
  return IDENTIFIER.test(value);
}

export function brokerTables(schema: string, prefix: string): BrokerTables {
  const name = (table: string) => `"${schema}"."${prefix}${table}"`;
  const groups = name('groups');
  const queue = name('queue');
  const hash = createHash('sha256').update(`${schema}.${prefix}`).digest('hex').slice(0, 16);
  const tables = { groups, queue };
  const statement = (kind: string, text: string): Statement => ({ name: `sb_${hash}_${kind}`, text });
  return {
    ...tables,
    channel: `switchboard_${hash}`,
    lockName: `switchboard-broker:${schema}.${prefix}`,
    schemaSql: [
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      `CREATE TABLE IF NOT EXISTS ${groups} (
        topic text NOT NULL,
        group_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (topic, group_name)
      )`,
      // Groups tables of earlier versions have no number.
      `ALTER TABLE ${groups} ADD COLUMN IF NOT EXISTS gid integer GENERATED ALWAYS AS IDENTITY`,
      `CREATE UNIQUE INDEX IF NOT EXISTS "${prefix}groups_gid" ON ${groups} (gid)`,
      `CREATE TABLE IF NOT EXISTS ${queue} (
        gid integer NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        visible_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        id text,
        headers json NOT NULL DEFAULT '{}',
        body bytea NOT NULL DEFAULT '',
        key text,
        PRIMARY KEY (gid, seq)
      ) WITH (fillfactor = 50)`,
      migrateSql(schema, prefix, tables),
    ],
    statements: {
      publish: statement('publish', publishSql(tables)),
      declareGroup: statement('declare_group', declareGroupSql(tables)),
      claim: statement('claim', claimSql(tables)),
      settle: statement('settle', settleSql(tables)),
      analyze: `ANALYZE ${queue}`,
    },
  };
}

type Tables = Pick<BrokerTables, 'groups' | 'queue'>;

/**
 * Earlier versions kept a message table and a delivery table per (topic, group): their pending
 * deliveries move to the queue, in their order, with their lease and attempt count, and the old
 * tables go.
 */
function migrateSql(schema: string, prefix: string, t: Tables): string {
  const messages = `"${schema}"."${prefix}messages"`;
  const deliveries = `"${schema}"."${prefix}deliveries"`;
  const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;
  return `DO $$ BEGIN
    IF to_regclass(${literal(deliveries)}) IS NOT NULL AND to_regclass(${literal(messages)}) IS NOT NULL THEN
      INSERT INTO ${t.queue} (gid, visible_at, attempts, id, headers, body, key)
        SELECT g.gid, d.visible_at, d.attempts, m.id, m.headers::json, m.body, m.key
        FROM ${deliveries} d
        JOIN ${messages} m ON m.seq = d.seq
        JOIN ${t.groups} g ON g.topic = d.topic AND g.group_name = d.group_name
        ORDER BY d.seq, g.gid;
      DROP TABLE ${deliveries};
      DROP TABLE ${messages};
    END IF;
  END $$`;
}

/**
 * Inserts a batch in publish order (one statement, one transaction): a queue row per message and
 * group of its topic, and a NOTIFY per topic with groups at commit.
 * Parameters: ids, topics, headers (JSON text), bodies, keys (arrays of one length), channel.
 */
function publishSql(t: Tables): string {
  return `WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::json[], $4::bytea[], $5::text[])
        WITH ORDINALITY AS u(id, topic, headers, body, key, n)
    ), queued AS (
      INSERT INTO ${t.queue} (gid, id, headers, body, key)
      SELECT g.gid, i.id, i.headers, i.body, i.key FROM input i JOIN ${t.groups} g ON g.topic = i.topic
      ORDER BY i.n, g.gid
    )
    SELECT pg_notify($6, topic) FROM (SELECT DISTINCT topic FROM input i WHERE EXISTS (
      SELECT 1 FROM ${t.groups} g WHERE g.topic = i.topic)) AS notified`;
}

/**
 * The consumer's commits are asynchronous (`synchronous_commit = off` for that transaction only):
 * they create no data, so a server crash that undoes the last of them can only bring a message
 * back (an ack undone: a redelivery; a claim undone: the row ready again, its attempt not counted),
 * never lose one. Publishes commit synchronously, as the `Broker` contract wants.
 */
const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL`;

/**
 * Acks the rows $5 (seqs) of group $1, then claims up to $3 ready rows with `seq > $2` (0 scans
 * from the head) in publish order, skipping rows other consumers hold, and leases them for $4 ms
 * (`visible_at`), counting the attempt: the acks that freed the slots travel with the claim that
 * fills them, one statement and one commit. `now()` (the statement's transaction time) keeps the
 * condition usable by the index; the claim's snapshot still sees the acked rows as leased.
 */
function claimSql(t: Tables): string {
  return `WITH acked AS (
      DELETE FROM ${t.queue} WHERE gid = $1 AND seq = ANY($5::bigint[])
    ), picked AS (
      SELECT ctid FROM ${t.queue}
      WHERE gid = $1 AND seq > $2 AND visible_at <= now() AND ${ASYNC_COMMIT}
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED
    ), leased AS (
      UPDATE ${t.queue} q
      SET visible_at = now() + make_interval(secs => $4::double precision / 1000), attempts = q.attempts + 1
      WHERE q.ctid = ANY(ARRAY(SELECT ctid FROM picked))
      RETURNING q.seq, q.attempts, q.id, q.headers, q.body, q.key
    )
    SELECT seq::text AS seq, attempts, id, headers, body, key FROM leased ORDER BY leased.seq`;
}

/**
 * Settles a batch of group $1 in one statement (asynchronous commit, see above):
 * - acks: deletes the rows $2 (seqs);
 * - nacks: makes the rows $3 (seqs) visible after $4 ms each, only while their attempt is still
 *   the nacked one ($5): a late nack never shortens another consumer's lease.
 * An ack is not checked against the attempt: whoever acks a row has handled its message.
 */
function settleSql(t: Tables): string {
  return `WITH acked AS (
      DELETE FROM ${t.queue} WHERE gid = $1 AND seq = ANY($2::bigint[])
      RETURNING 1
    ), nacked AS (
      UPDATE ${t.queue} q
      SET visible_at = clock_timestamp() + make_interval(secs => n.delay_ms / 1000)
      FROM unnest($3::bigint[], $4::double precision[], $5::integer[]) AS n(seq, delay_ms, attempts)
      WHERE q.gid = $1 AND q.seq = n.seq AND q.attempts = n.attempts
      RETURNING 1
    )
    SELECT ${ASYNC_COMMIT} AS async, (SELECT count(*) FROM acked)::int AS acked, (SELECT count(*) FROM nacked)::int AS nacked`;
}

/** The group's number, declaring it first when it is new. */
function declareGroupSql(t: Tables): string {
  return `WITH declared AS (
      INSERT INTO ${t.groups} (topic, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING gid
    )
    SELECT gid FROM declared UNION ALL SELECT gid FROM ${t.groups} WHERE topic = $1 AND group_name = $2`;
}
