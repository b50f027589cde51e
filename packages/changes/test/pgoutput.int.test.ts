import { PrivatePostgresServer } from '@switchboard/testkit';
import pg from 'pg';
import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePgoutput, type PgoutputMessage, parseLsn, type RelationMessage, type TupleValue } from '../src/index.js';

// The decoder against what PostgreSQL itself writes (pg_logical_slot_peek_binary_changes returns the
// exact pgoutput bytes a replication connection receives), cross-checked message by message with an
// independent decoder, pg-logical-replication's.
const server = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });
let db: pg.Client;

beforeAll(async () => {
  await server.start();
  db = new pg.Client(server.url);
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await server.dispose();
});

const lsnOf = (text: string | null) => (text === null ? null : parseLsn(text));

/** Their decoded message and ours say the same. */
function expectSame(ours: PgoutputMessage, message: Pgoutput.Message, relations: Map<number, RelationMessage>): void {
  expect(ours.tag).toBe(message.tag);
  switch (ours.tag) {
    case 'begin': {
      const theirs = message as Pgoutput.MessageBegin;
      expect(ours.finalLsn).toBe(lsnOf(theirs.commitLsn));
      expect(ours.xid).toBe(theirs.xid);
      expect(ours.commitTimeMs).toBe(Number((theirs.commitTime as bigint) / 1000n));
      return;
    }
    case 'commit': {
      const theirs = message as Pgoutput.MessageCommit;
      expect(ours.commitLsn).toBe(lsnOf(theirs.commitLsn));
      expect(ours.endLsn).toBe(lsnOf(theirs.commitEndLsn));
      expect(ours.commitTimeMs).toBe(Number((theirs.commitTime as bigint) / 1000n));
      return;
    }
    case 'relation': {
      const theirs = message as Pgoutput.MessageRelation;
      relations.set(ours.relationId, ours);
      expect(ours).toMatchObject({
        relationId: theirs.relationOid,
        schema: theirs.schema,
        name: theirs.name,
        replicaIdentity: theirs.replicaIdentity,
      });
      expect(ours.columns.map((c) => [c.name, c.typeOid, c.typeModifier, c.key])).toEqual(
        theirs.columns.map((c) => [c.name, c.typeOid, c.typeMod, (c.flags & 1) === 1]),
      );
      return;
    }
    case 'insert':
    case 'update':
    case 'delete': {
      const theirs = message as Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete;
      const relation = relations.get(ours.relationId);
      if (relation === undefined) throw new Error('a change before its relation');
      expect(relation.name).toBe(theirs.relation.name);
      // Their values went through pg's type parsers; ours are the text PostgreSQL sent. (They fill an
      // unchanged TOASTed value from the old row, as the change source does; the decoder leaves it undefined.)
      const parsed = (values: TupleValue[] | undefined, keyOnly = false, fallback?: TupleValue[]) => {
        if (values === undefined) return null;
        const out: Record<string, unknown> = {};
        relation.columns.forEach((c, i) => {
          if (keyOnly && !c.key) return;
          const v = values[i] === undefined ? fallback?.[i] : values[i];
          out[c.name] = v === null || v === undefined ? (keyOnly ? undefined : v) : pg.types.getTypeParser(c.typeOid)(v);
        });
        return out;
      };
      if (ours.tag !== 'delete') {
        expect(parsed(ours.new, false, ours.tag === 'update' ? ours.old : undefined)).toEqual({
          ...(theirs as Pgoutput.MessageInsert).new,
        });
      }
      if (ours.tag !== 'insert') {
        const { key, old } = theirs as Pgoutput.MessageDelete;
        expect(parsed(ours.key, true)).toEqual(key === null ? null : { ...key });
        if (ours.tag === 'delete' || ours.old !== undefined) expect(parsed(ours.old)).toEqual(old === null ? null : { ...old });
      }
      return;
    }
    case 'truncate': {
      const theirs = message as Pgoutput.MessageTruncate;
      expect(ours.relationIds).toEqual(theirs.relations.map((r) => r.relationOid));
      expect(ours.cascade).toBe(theirs.cascade);
      expect(ours.restartIdentity).toBe(theirs.restartIdentity);
      return;
    }
    default:
      return;
  }
}

describe('pgoutput decoder on real server output', () => {
  it('decodes begin, relation, insert, update (key change, FULL identity, unchanged TOAST), delete, truncate and commit as another decoder does', async () => {
    await db.query(`CREATE TABLE items (
      id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), at timestamptz, tags text[], meta jsonb, blob bytea, big text)`);
    await db.query('CREATE TABLE audit (id bigserial PRIMARY KEY, what text)');
    await db.query(`CREATE PUBLICATION peek_pub FOR TABLE items, audit`);
    await db.query(`SELECT pg_create_logical_replication_slot('peek', 'pgoutput')`);
    // Incompressible and over 2 kB: stored out of line (TOAST), so an update of another column does not send it.
    const big = (await db.query<{ big: string }>("SELECT string_agg(md5(i::text), '') AS big FROM generate_series(1, 200) i")).rows[0]?.big;

    await db.query(
      `INSERT INTO items VALUES (1, 'héllo', 12.50, '2026-05-01 12:34:56.123456+02', '{a,"b c",NULL}', '{"k":[1,2]}', '\\xdeadbeef', $1)`,
      [big],
    );
    await db.query(`INSERT INTO items (id, name) SELECT g, 'item ' || g FROM generate_series(2, 4) g`);
    await db.query(`UPDATE items SET name = 'renamed' WHERE id = 1`); // big: unchanged TOAST
    await db.query('UPDATE items SET id = 10 WHERE id = 2'); // key change: the old key is sent
    await db.query('BEGIN');
    await db.query(`INSERT INTO audit (what) VALUES ('one'), ('two')`);
    await db.query('DELETE FROM items WHERE id = 3');
    await db.query('COMMIT');
    await db.query('ALTER TABLE items REPLICA IDENTITY FULL');
    await db.query(`UPDATE items SET price = 1 WHERE id = 1`); // the whole old row
    await db.query('DELETE FROM items WHERE id = 4');
    await db.query('TRUNCATE audit');

    const changes = await db.query<{ lsn: string; data: Buffer }>(
      `SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes('peek', NULL, NULL, 'proto_version', '1', 'publication_names', 'peek_pub')`,
    );
    const theirs = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['peek_pub'] });
    const relations = new Map<number, RelationMessage>();
    const tags: string[] = [];
    for (const row of changes.rows) {
      const ours = decodePgoutput(row.data);
      tags.push(ours.tag);
      expectSame(ours, theirs.parse(row.data), relations);
    }
    expect(tags.filter((t) => t === 'insert')).toHaveLength(6);
    expect(tags.filter((t) => t === 'update')).toHaveLength(3);
    expect(tags.filter((t) => t === 'delete')).toHaveLength(2);
    expect(tags.filter((t) => t === 'truncate')).toHaveLength(1);
    expect(tags.filter((t) => t === 'begin')).toHaveLength(tags.filter((t) => t === 'commit').length);

    const decoded = changes.rows.map((row) => decodePgoutput(row.data));
    const updates = decoded.filter((m) => m.tag === 'update');
    // The TOASTed column of the first update was not sent: undefined, not NULL.
    expect(updates[0]?.tag === 'update' && updates[0].new[7]).toBe(undefined);
    expect(updates[0]?.tag === 'update' && updates[0].old).toBe(undefined);
    // The key change carries the old key; the FULL update the whole old row, TOASTed value included.
    expect(updates[1]?.tag === 'update' && updates[1].key?.[0]).toBe('2');
    expect(updates[2]?.tag === 'update' && updates[2].old?.[7]).toBe(big);
    const firstInsert = decoded.find((m) => m.tag === 'insert');
    expect(firstInsert?.tag === 'insert' && firstInsert.new.slice(0, 7)).toEqual([
      '1',
      'héllo',
      '12.50',
      '2026-05-01 10:34:56.123456+00',
      '{a,"b c",NULL}',
      '{"k": [1, 2]}',
      '\\xdeadbeef',
    ]);
  });
});
