import { DeliveryRecorder, describePlainLayout, randomName, testMessage } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';

// A producer that is not Switchboard writes queue rows with plain SQL, in the plain layout of
// docs/brokers.md; and the tables of an earlier version are migrated without losing a message.
const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = randomName('sbplain').replaceAll('-', '_');
const client = new pg.Client({ connectionString: url });
await client.connect();

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

describePlainLayout(
  'postgres (INSERT)',
  () => createPostgresBroker({ url, schema, pollIntervalMs: 50 }),
  () => ({
    // A row for every group of the topic (that is how fan-out works); every column but `gid` has a default.
    async write(topic, message) {
      await client.query(
        `INSERT INTO "${schema}".switchboard_queue (gid, id, headers, body, key)
         SELECT gid, $2, $3, convert_to($4, 'UTF8'), $5 FROM "${schema}".switchboard_groups WHERE topic = $1`,
        [topic, message.id ?? null, JSON.stringify(message.headers ?? {}), message.body ?? '', message.key ?? null],
      );
    },
  }),
);

describe('PostgreSQL queue of an earlier version', () => {
  it('moves the pending deliveries of the earlier two-table layout into the queue, in order, none lost', async () => {
    const legacy = randomName('sblegacy').replaceAll('-', '_');
    // The tables as earlier versions created them, with two groups' pending deliveries.
    await client.query(`CREATE SCHEMA "${legacy}"`);
    await client.query(`CREATE TABLE "${legacy}".switchboard_messages (seq bigserial PRIMARY KEY, id text NOT NULL, topic text NOT NULL,
      headers jsonb NOT NULL, body bytea NOT NULL, key text, published_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(`CREATE TABLE "${legacy}".switchboard_groups (topic text NOT NULL, group_name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, group_name))`);
    await client.query(`CREATE TABLE "${legacy}".switchboard_deliveries (topic text NOT NULL, group_name text NOT NULL, seq bigint NOT NULL,
      visible_at timestamptz NOT NULL DEFAULT now(), attempts integer NOT NULL DEFAULT 0, PRIMARY KEY (topic, group_name, seq))`);
    const topic = randomName('t');
    const sent = Array.from({ length: 30 }, () => testMessage(topic, { headers: { n: 'x' } }));
    await client.query(`INSERT INTO "${legacy}".switchboard_groups (topic, group_name) VALUES ($1, 'a'), ($1, 'b')`, [topic]);
    for (const message of sent) {
      const { rows } = await client.query(
        `INSERT INTO "${legacy}".switchboard_messages (id, topic, headers, body) VALUES ($1, $2, $3, $4) RETURNING seq`,
        [message.id, topic, JSON.stringify(message.headers), Buffer.from(message.body)],
      );
      await client.query(`INSERT INTO "${legacy}".switchboard_deliveries (topic, group_name, seq) VALUES ($1, 'a', $2), ($1, 'b', $2)`, [
        topic,
        rows[0].seq,
      ]);
    }
    const broker = createPostgresBroker({ url, schema: legacy, pollIntervalMs: 50 });
    try {
      const a = new DeliveryRecorder();
      const b = new DeliveryRecorder();
      await broker.subscribe({ topic, group: 'a', maxInFlight: 1 }, a.handler);
      await broker.subscribe({ topic, group: 'b' }, b.handler);
      await a.waitForCount(30, 10_000);
      await b.waitForUnique(30, 10_000);
      expect(a.ids()).toEqual(sent.map((m) => m.id));
      expect(
        a.received.every((r) => Buffer.from(r.delivery.body).equals(Buffer.from(sent.find((m) => m.id === r.delivery.id)!.body))),
      ).toBe(true);
      expect(b.unique()).toEqual(new Set(sent.map((m) => m.id)));
      const left = await client.query(`SELECT to_regclass($1) AS messages`, [`"${legacy}".switchboard_messages`]);
      expect(left.rows[0].messages).toBeNull();
    } finally {
      await broker.close();
      await client.query(`DROP SCHEMA "${legacy}" CASCADE`);
    }
  });
});
