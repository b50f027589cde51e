import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Delivery } from '@switchboard/core';
import { decodeCloudEvent } from '@switchboard/core';
import { createSqliteBroker } from '@switchboard/sqlite';
import { DeliveryRecorder, randomName, testMessage } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

// A producer that is not Switchboard (another process, another language) writes queue rows with
// plain SQL, in the plain layout of docs/brokers.md, and the broker's consumers read them as CloudEvents.
const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-plain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SQLite plain layout, written by hand with INSERT', () => {
  it('reads binary and structured rows, and a row without a transport id written twice, as CloudEvents', async () => {
    const path = join(dir, 'plain.db');
    const broker = createSqliteBroker({ path, pollIntervalMs: 10 });
    const db = new Database(path);
    try {
      const topic = randomName('orders');
      const group = randomName('billing');
      await broker.declareGroup(topic, group);
      // A row for every group of the topic: that is how fan-out works.
      const insert = db.prepare(
        `INSERT INTO sb_broker_queue (gid, id, headers, body, key) SELECT gid, ?, ?, CAST(? AS BLOB), ? FROM sb_broker_groups WHERE topic = ?`,
      );
      const headers = {
        'ce-specversion': '1.0',
        'ce-id': 'order-1',
        'ce-source': '/shop',
        'ce-subject': 'caf\u00e9 100% "one"',
        'ce-type': 'com.example.order.placed',
        'ce-time': '2026-12-01T10:00:00Z',
        'content-type': 'application/json',
      };
      insert.run('transport-1', JSON.stringify(headers), '{"total":12.5}', 'customer-7', topic);
      const document = (id: string) =>
        JSON.stringify({
          specversion: '1.0',
          id,
          source: '/shop',
          type: 'com.example.order.paid',
          datacontenttype: 'text/plain',
          data: 'paid',
        });
      insert.run('', JSON.stringify({ 'content-type': 'application/cloudevents+json' }), document('order-2'), null, topic);
      // The shortest form: every other column has its default, the body is even left as text.
      db.prepare(`INSERT INTO sb_broker_queue (gid, body) SELECT gid, ? FROM sb_broker_groups WHERE topic = ?`).run(
        document('order-3'),
        topic,
      );
      const shipped = { 'ce-specversion': '1.0', 'ce-id': 'order-4', 'ce-source': '/shop', 'ce-type': 'com.example.order.shipped' };
      for (let i = 0; i < 2; i++)
        db.prepare(`INSERT INTO sb_broker_queue (gid, headers) SELECT gid, ? FROM sb_broker_groups WHERE topic = ?`).run(
          JSON.stringify(shipped),
          topic,
        );

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
      db.close();
      await broker.close();
    }
  });

  it('rebuilds a queue of the earlier layout (state in the row) with every row, leased ones as they were', async () => {
    const path = join(dir, 'legacy.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE sb_broker_groups (gid INTEGER PRIMARY KEY, topic TEXT NOT NULL, name TEXT NOT NULL, UNIQUE (topic, name));
      CREATE TABLE sb_broker_queue (seq INTEGER PRIMARY KEY, gid INTEGER NOT NULL, visible_at INTEGER NOT NULL, attempt INTEGER NOT NULL,
        id TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, key TEXT, created INTEGER NOT NULL);
      CREATE INDEX sb_broker_queue_order ON sb_broker_queue (gid, seq, visible_at);
    `);
    const topic = randomName('t');
    db.prepare(`INSERT INTO sb_broker_groups (topic, name) VALUES (?, 'g')`).run(topic);
    const sent = Array.from({ length: 20 }, () => testMessage(topic, { headers: { n: 'x' } }));
    const insert = db.prepare(
      `INSERT INTO sb_broker_queue (gid, visible_at, attempt, id, headers, body, key, created) VALUES (1, ?, ?, ?, ?, ?, NULL, 0)`,
    );
    // The first was delivered twice before, its lease long over: its next delivery is its third.
    for (const [i, m] of sent.entries()) insert.run(i === 0 ? 1 : 0, i === 0 ? 2 : 0, m.id, JSON.stringify(m.headers), Buffer.from(m.body));
    db.close();
    const broker = createSqliteBroker({ path, pollIntervalMs: 10 });
    try {
      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group: 'g', maxInFlight: 1 }, recorder.handler);
      await recorder.waitForCount(20, 10_000);
      expect(recorder.ids()).toEqual(sent.map((m) => m.id));
      expect(recorder.received.map((r) => r.delivery.attempt)).toEqual([3, ...Array(19).fill(1)]);
      expect(recorder.received.map((r) => r.delivery.headers)).toEqual(sent.map((m) => m.headers));
    } finally {
      await broker.close();
    }
  });
});
