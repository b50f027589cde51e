import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newMessageId } from '@switchboard/core';
import { createSqliteReceiptStore } from '@switchboard/sqlite';
import { describeReceiptStoreConformance, testClock } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sb-receipts-'));
}

describeReceiptStoreConformance('sqlite', ({ clock }) => {
  const dir = tempDir();
  const path = join(dir, 'store.db');
  return {
    store: createSqliteReceiptStore({ path, clock }),
    second: createSqliteReceiptStore({ path, clock }),
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteReceiptStore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('opens files in WAL mode and keeps receipts across reopen', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const id = newMessageId();
    const first = createSqliteReceiptStore({ path });
    await first.record([{ group: 'g', messageId: id, state: 'processed', attempt: 1, result: 'ok' }]);
    await first.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const second = createSqliteReceiptStore({ path });
    expect(await second.get(id, 'g')).toMatchObject({ state: 'processed', result: 'ok' });
    await second.close();
  });

  it('commits the processed mark with the application write, or rolls both back', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const clock = testClock();
    const store = createSqliteReceiptStore({ database: db, clock: clock.now });
    const [ok, failing] = [newMessageId(), newMessageId()];
    for (const id of [ok, failing]) await store.claim({ group: 'g', messageId: id, owner: 'w', leaseMs: 1000 });

    db.transaction(() => {
      db.prepare('INSERT INTO orders (id) VALUES (?)').run(ok);
      store.recordSync([{ group: 'g', messageId: ok, state: 'processed', attempt: 1 }]);
    })();
    expect(() =>
      db.transaction(() => {
        db.prepare('INSERT INTO orders (id) VALUES (?)').run(failing);
        store.recordSync([{ group: 'g', messageId: failing, state: 'processed', attempt: 1 }]);
        throw new Error('handler failed after its writes');
      })(),
    ).toThrow('handler failed');

    expect(db.prepare('SELECT id FROM orders').pluck().all()).toEqual([ok]);
    expect((await store.get(ok, 'g'))?.state).toBe('processed');
    expect((await store.get(failing, 'g'))?.state).toBe('processing');
    await store.close();
    expect(db.open).toBe(true);
    db.close();
  });

  it('uses a table prefix and refuses one that is not an identifier', () => {
    const db = new Database(':memory:');
    createSqliteReceiptStore({ database: db, tablePrefix: 'app_' });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toContain('app_receipts');
    expect(() => createSqliteReceiptStore({ database: db, tablePrefix: 'x; DROP TABLE y' })).toThrow(
      expect.objectContaining({ code: 'SB_CONFIG_INVALID' }),
    );
    db.close();
  });

  it('reports a write lock held too long by another process as SB_STORE_UNAVAILABLE', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const store = createSqliteReceiptStore({ path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await expect(store.record([{ group: 'g', messageId: newMessageId(), state: 'received' }])).rejects.toMatchObject({
      code: 'SB_STORE_UNAVAILABLE',
      retryable: true,
    });
    other.exec('ROLLBACK');
    other.close();
    expect(await store.record([{ group: 'g', messageId: newMessageId(), state: 'received' }])).toEqual(['created']);
    await store.close();
  });
});
