import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteBroker } from '@switchboard/sqlite';
import { DeliveryRecorder, describePlainLayout, randomName, testMessage } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

// A producer that is not Switchboard (another process, another language) writes queue rows with
// plain SQL, in the plain layout of docs/brokers.md, and the broker's consumers read them as CloudEvents.
const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-plain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const path = join(dir, 'plain.db');
let db: Database.Database | undefined;
afterAll(() => db?.close());

describePlainLayout(
  'sqlite (INSERT)',
  () => createSqliteBroker({ path, pollIntervalMs: 10 }),
  () => {
    db ??= new Database(path);
    // A row for every group of the topic (that is how fan-out works); every column but `gid` has a default.
    const insert = db.prepare(
      `INSERT INTO sb_broker_queue (gid, id, headers, body, key) SELECT gid, ?, ?, CAST(? AS BLOB), ? FROM sb_broker_groups WHERE topic = ?`,
    );
    return {
      async write(topic, message) {
        insert.run(message.id ?? '', JSON.stringify(message.headers ?? {}), message.body ?? '', message.key ?? null, topic);
      },
    };
  },
);

describe('SQLite queue of an earlier version', () => {
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
