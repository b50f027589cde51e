import type { Delivery } from '@switchboard/core';
import { decodeCloudEvent } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';

// A producer that is not Switchboard writes queue rows with plain SQL, in the plain layout of
// docs/brokers.md, and the broker's consumers read them as CloudEvents.
const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = randomName('sbplain').replaceAll('-', '_');
const client = new pg.Client({ connectionString: url });
await client.connect();

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

/** A row for every group of the topic (how fan-out works), and the NOTIFY that wakes consumers at once. */
async function insert(topic: string, columns: { id?: string; headers: Record<string, string>; body: string; key?: string }): Promise<void> {
  await client.query(
    `INSERT INTO "${schema}".switchboard_queue (gid, id, headers, body, key)
     SELECT gid, $2, $3, convert_to($4, 'UTF8'), $5 FROM "${schema}".switchboard_groups WHERE topic = $1`,
    [topic, columns.id ?? null, JSON.stringify(columns.headers), columns.body, columns.key ?? null],
  );
}

describe('PostgreSQL plain layout, written by hand with INSERT', () => {
  it('reads binary and structured rows, and a row without a transport id written twice, as CloudEvents', async () => {
    const broker = createPostgresBroker({ url, schema, pollIntervalMs: 50 });
    try {
      const topic = randomName('orders');
      const group = randomName('billing');
      await broker.declareGroup(topic, group);
      await insert(topic, {
        id: 'transport-1',
        headers: {
          'ce-specversion': '1.0',
          'ce-id': 'order-1',
          'ce-source': '/shop',
          'ce-subject': 'caf\u00e9 100% "one"',
          'ce-type': 'com.example.order.placed',
          'ce-time': '2026-12-01T10:00:00Z',
          'content-type': 'application/json',
        },
        body: '{"total":12.5}',
        key: 'customer-7',
      });
      const document = (id: string) =>
        JSON.stringify({
          specversion: '1.0',
          id,
          source: '/shop',
          type: 'com.example.order.paid',
          datacontenttype: 'text/plain',
          data: 'paid',
        });
      await insert(topic, { headers: { 'content-type': 'application/cloudevents+json' }, body: document('order-2') });
      // The shortest form: no headers (the column's default `{}` would do too), the document alone.
      await client.query(
        `INSERT INTO "${schema}".switchboard_queue (gid, body)
         SELECT gid, convert_to($2, 'UTF8') FROM "${schema}".switchboard_groups WHERE topic = $1`,
        [topic, document('order-3')],
      );
      for (let i = 0; i < 2; i++) {
        await insert(topic, {
          headers: { 'ce-specversion': '1.0', 'ce-id': 'order-4', 'ce-source': '/shop', 'ce-type': 'com.example.order.shipped' },
          body: '',
        });
      }
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group }, recorder.handler);
      await recorder.waitForCount(5, 10_000);
      const deliveries = recorder.received.map((r) => r.delivery) as Delivery[];
      const events = deliveries.map((d) => decodeCloudEvent(d.headers, d.body, broker.binding));
      expect(events[0]).toMatchObject({
        id: 'order-1',
        source: '/shop',
        subject: 'caf\u00e9 100% "one"',
        type: 'com.example.order.placed',
        time: '2026-12-01T10:00:00Z',
        datacontenttype: 'application/json',
        data: { total: 12.5 },
      });
      expect(deliveries[0]!.id).toBe('transport-1');
      expect(deliveries[0]!.key).toBe('customer-7');
      expect(events[1]).toMatchObject({ id: 'order-2', datacontenttype: 'text/plain', data: 'paid' });
      expect(events[2]).toMatchObject({ id: 'order-3', data: 'paid' });
      expect(events[3]).toMatchObject({ id: 'order-4', type: 'com.example.order.shipped' });
      expect(events[4]).toMatchObject({ id: 'order-4', type: 'com.example.order.shipped' });
      // Without a transport id a delivery is named by the row's `seq`: one per row.
      expect(deliveries[3]!.id).toMatch(/^\d+$/);
      expect(deliveries[3]!.id).not.toBe(deliveries[4]!.id);
    } finally {
      await broker.close();
    }
  });

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
