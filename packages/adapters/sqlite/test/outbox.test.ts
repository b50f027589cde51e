import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOutboxRelay, newMessageId } from '@switchboard/core';
import { createMemoryBroker } from '@switchboard/memory';
import { createSqliteOutbox } from '@switchboard/sqlite';
import { DeliveryRecorder, describeOutboxConformance, randomName, testMessage } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sb-outbox-'));
}

describeOutboxConformance('sqlite', ({ clock }) => {
  const dir = tempDir();
  const path = join(dir, 'app.db');
  // The application's own handle: its table and the outbox live in the same file.
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL)');
  const outbox = createSqliteOutbox({ database: db, clock });
  const insert = db.prepare('INSERT INTO orders (tag) VALUES (?)');
  return {
    store: outbox,
    second: createSqliteOutbox({ path, clock }),
    async transact(tag, messages, options = {}) {
      try {
        db.transaction(() => {
          insert.run(tag);
          outbox.enqueue(messages);
          if (options.rollback === true) throw new Rollback();
        })();
      } catch (error) {
        if (!(error instanceof Rollback)) throw error;
      }
    },
    async appRows() {
      return db.prepare('SELECT tag FROM orders ORDER BY seq').pluck().all() as string[];
    },
    async teardown() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

class Rollback extends Error {}

describe('SqliteOutbox', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('relays committed messages through a broker to a subscriber with their MessageIds', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const outbox = createSqliteOutbox({ database: db });
    const broker = createMemoryBroker();
    const topic = randomName('orders');
    const recorder = new DeliveryRecorder();
    await broker.subscribe({ topic, group: 'billing' }, recorder.handler);
    const relay = createOutboxRelay({ store: outbox, broker, pollIntervalMs: 10 });
    relay.start();

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const orderId = newMessageId();
      const message = testMessage(topic, { key: orderId });
      ids.push(message.id);
      db.transaction(() => {
        db.prepare('INSERT INTO orders (id) VALUES (?)').run(orderId);
        outbox.enqueue([message]);
      })();
    }
    await recorder.waitForCount(5);
    await relay.stop();
    expect(recorder.ids()).toEqual(ids);
    expect(await outbox.pendingCount()).toBe(0);
    await broker.close();
    await outbox.close();
    expect(db.open).toBe(true);
    db.close();
  });

  it('commits on its own outside a transaction and keeps unsent messages across reopen', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'outbox.db');
    const first = createSqliteOutbox({ path });
    const message = testMessage('t', { headers: { a: 'b' }, body: Uint8Array.from([0, 1, 2]) });
    expect(first.enqueue([message])).toHaveLength(1);
    await first.close();
    const second = createSqliteOutbox({ path });
    const [entry] = await second.claim({ owner: 'r', limit: 10, leaseMs: 1000 });
    expect(entry?.message).toEqual({ ...message, body: Uint8Array.from([0, 1, 2]) });
    await second.close();
  });

  it('uses a table prefix and refuses one that is not an identifier', () => {
    const db = new Database(':memory:');
    createSqliteOutbox({ database: db, tablePrefix: 'app_' });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toContain('app_outbox');
    expect(() => createSqliteOutbox({ database: db, tablePrefix: 'x y' })).toThrow(expect.objectContaining({ code: 'SB_CONFIG_INVALID' }));
    db.close();
  });

  it('reports a write lock held too long by another process as SB_STORE_UNAVAILABLE', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'outbox.db');
    const outbox = createSqliteOutbox({ path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    expect(() => outbox.enqueue([testMessage('t')])).toThrow(expect.objectContaining({ code: 'SB_STORE_UNAVAILABLE' }));
    await expect(outbox.claim({ owner: 'r', limit: 1, leaseMs: 1000 })).rejects.toMatchObject({ code: 'SB_STORE_UNAVAILABLE' });
    other.exec('ROLLBACK');
    other.close();
    expect(outbox.enqueue([testMessage('t')])).toHaveLength(1);
    await outbox.close();
  });
});
