import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newMessageId, type ReceiptStore, type ReceiptUpdate } from '@switchboard/core';
import { decideClaim, mergeReceipt } from '@switchboard/core/kit';
import { createSqliteReceiptStore } from '@switchboard/sqlite';
import { describeReceiptStoreConformance, type TestClock, testClock } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runStoreCall } from '../src/store-database.js';

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
    await first.record([{ group: 'g', source: 's', messageId: id, state: 'processed', attempt: 1, result: 'ok' }]);
    await first.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const second = createSqliteReceiptStore({ path });
    expect(await second.get({ group: 'g', source: 's', messageId: id })).toMatchObject({ state: 'processed', result: 'ok' });
    await second.close();
  });

  it("fences a zombie's late commit when the mark goes first and its answer decides the effect", async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE effects (id TEXT NOT NULL, worker TEXT NOT NULL)');
    const clock = testClock();
    const store = createSqliteReceiptStore({ database: db, clock: clock.now });
    const insert = db.prepare('INSERT INTO effects (id, worker) VALUES (?, ?)');
    // The recipe of docs/messaging.md: the `processed` mark first; `ignored` means another run committed.
    const commit = (messageId: string, worker: string) =>
      db.transaction(() => {
        const [outcome] = store.recordSync([{ group: 'g', source: 's', messageId, state: 'processed' }]);
        if (outcome !== 'ignored') insert.run(messageId, worker);
        return outcome;
      })();
    const [early, late] = [newMessageId(), newMessageId()];
    for (const messageId of [early, late]) {
      expect((await store.claim({ group: 'g', source: 's', messageId, owner: 'zombie', leaseMs: 1000 })).outcome).toBe('claimed');
    }
    // The zombie stops past its lease; another worker takes both claims over.
    clock.advance(1500);
    for (const messageId of [early, late]) {
      expect((await store.claim({ group: 'g', source: 's', messageId, owner: 'taker', leaseMs: 1000 })).outcome).toBe('claimed');
    }
    // `early`: the taker commits, then the zombie wakes up and commits too.
    expect(commit(early, 'taker')).toBe('updated');
    expect(commit(early, 'zombie')).toBe('ignored');
    // `late`: the zombie wakes up first, the taker commits after.
    expect(commit(late, 'zombie')).toBe('updated');
    expect(commit(late, 'taker')).toBe('ignored');
    expect(db.prepare('SELECT id, worker FROM effects ORDER BY rowid').all()).toEqual([
      { id: early, worker: 'taker' },
      { id: late, worker: 'zombie' },
    ]);
    await store.close();
    db.close();
  });

  it('commits the processed mark with the application write, or rolls both back', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const clock = testClock();
    const store = createSqliteReceiptStore({ database: db, clock: clock.now });
    const [ok, failing] = [newMessageId(), newMessageId()];
    for (const id of [ok, failing]) await store.claim({ group: 'g', source: 's', messageId: id, owner: 'w', leaseMs: 1000 });

    db.transaction(() => {
      db.prepare('INSERT INTO orders (id) VALUES (?)').run(ok);
      store.recordSync([{ group: 'g', source: 's', messageId: ok, state: 'processed', attempt: 1 }]);
    })();
    expect(() =>
      db.transaction(() => {
        db.prepare('INSERT INTO orders (id) VALUES (?)').run(failing);
        store.recordSync([{ group: 'g', source: 's', messageId: failing, state: 'processed', attempt: 1 }]);
        throw new Error('handler failed after its writes');
      })(),
    ).toThrow('handler failed');

    expect(db.prepare('SELECT id FROM orders').pluck().all()).toEqual([ok]);
    expect((await store.get({ group: 'g', source: 's', messageId: ok }))?.state).toBe('processed');
    expect((await store.get({ group: 'g', source: 's', messageId: failing }))?.state).toBe('processing');
    await store.close();
    expect(db.open).toBe(true);
    db.close();
  });

  it('builds first claims and processed marks exactly as the core rules do', async () => {
    const clock = testClock();
    const store = createSqliteReceiptStore({ database: new Database(':memory:'), clock: clock.now });
    await expectCoreRules(store, clock);
  });

  it('records then claims in one transaction with recordAndClaim', async () => {
    const clock = testClock();
    const store = createSqliteReceiptStore({ database: new Database(':memory:'), clock: clock.now });
    const [done, fresh] = [newMessageId(), newMessageId()];
    await store.claim({ group: 'g', source: 's', messageId: done, owner: 'w', leaseMs: 1000 });
    const result = await store.recordAndClaim(
      [{ group: 'g', source: 's', messageId: done, state: 'processed', attempt: 1, result: 'ok' }],
      [
        { group: 'g', source: 's', messageId: done, owner: 'w', leaseMs: 1000 },
        { group: 'g', source: 's', messageId: fresh, owner: 'w', leaseMs: 1000 },
      ],
    );
    expect(result.outcomes).toEqual(['updated']);
    expect(result.claims.map((claim) => claim.outcome)).toEqual(['duplicate-processed', 'claimed']);
    expect(await store.get({ group: 'g', source: 's', messageId: done })).toMatchObject({ state: 'processed', result: 'ok' });
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

  it('refuses a table of the earlier layout (keyed by message_id, grp) with SB_CONFIG_INVALID instead of failing every write', () => {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE sb_receipts (message_id TEXT NOT NULL, grp TEXT NOT NULL, source TEXT, PRIMARY KEY (message_id, grp)) WITHOUT ROWID',
    );
    expect(() => createSqliteReceiptStore({ database: db })).toThrow(
      expect.objectContaining({ code: 'SB_CONFIG_INVALID', detail: expect.stringContaining('sb_receipts') }),
    );
    db.close();
  });

  it('adds the sender column to a table of the version before it, keeping its rows', async () => {
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE sb_receipts (
      message_id TEXT NOT NULL, source TEXT NOT NULL, grp TEXT NOT NULL, state TEXT NOT NULL, type TEXT, topic TEXT,
      attempts INTEGER NOT NULL, received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, processed_at INTEGER,
      error TEXT, result TEXT, lease_owner TEXT, lease_until INTEGER, PRIMARY KEY (message_id, source, grp)) WITHOUT ROWID`);
    db.prepare(
      `INSERT INTO sb_receipts (message_id, source, grp, state, attempts, received_at, updated_at) VALUES ('old', 's', 'g', 'processed', 1, 1, 1)`,
    ).run();
    const store = createSqliteReceiptStore({ database: db });
    expect(await store.get({ group: 'g', source: 's', messageId: 'old' })).toMatchObject({ state: 'processed' });
    expect((await store.get({ group: 'g', source: 's', messageId: 'old' }))?.sender).toBeUndefined();
    const fresh = await store.claim({ group: 'g', source: 's', messageId: 'new', owner: 'w', leaseMs: 1000, sender: 'service-a' });
    expect(fresh.receipt.sender).toBe('service-a');
    expect((await store.get({ group: 'g', source: 's', messageId: 'new' }))?.sender).toBe('service-a');
    // Opening it again finds the column there.
    expect(() => createSqliteReceiptStore({ database: db })).not.toThrow();
    db.close();
  });

  it('reports a value the engine refuses (a constraint) as SB_STORE_REFUSED, not retryable, and rolls the batch back', async () => {
    const db = new Database(':memory:');
    const store = createSqliteReceiptStore({ database: db });
    db.exec(
      `CREATE TRIGGER small_type BEFORE INSERT ON sb_receipts WHEN length(NEW.type) > 8 BEGIN SELECT RAISE(ABORT, 'type too long'); END`,
    );
    const [ok, bad] = [newMessageId(), newMessageId()];
    const error = await store
      .record([
        { group: 'g', source: 's', messageId: ok, state: 'received', type: 'short' },
        { group: 'g', source: 's', messageId: bad, state: 'received', type: 'far-too-long' },
      ])
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SB_STORE_REFUSED', retryable: false, status: 500 });
    expect(await store.get({ group: 'g', source: 's', messageId: ok })).toBeUndefined();
    expect(await store.record([{ group: 'g', source: 's', messageId: ok, state: 'received', type: 'short' }])).toEqual(['created']);
    await store.close();
    db.close();
  });

  it('maps SQLite result codes: constraint, too big and mismatch are refused; busy, locked and I/O are unavailable', () => {
    const fail = (code: string) => () =>
      runStoreCall('receipt', () => {
        throw Object.assign(new Error(code), { code });
      });
    for (const code of ['SQLITE_CONSTRAINT_CHECK', 'SQLITE_CONSTRAINT_NOTNULL', 'SQLITE_TOOBIG', 'SQLITE_MISMATCH']) {
      expect(fail(code)).toThrow(expect.objectContaining({ code: 'SB_STORE_REFUSED', retryable: false }));
    }
    for (const code of ['SQLITE_BUSY', 'SQLITE_LOCKED_SHAREDCACHE', 'SQLITE_IOERR_WRITE', 'SQLITE_FULL']) {
      expect(fail(code)).toThrow(expect.objectContaining({ code: 'SB_STORE_UNAVAILABLE', retryable: true }));
    }
  });

  it('reports a write lock held too long by another process as SB_STORE_UNAVAILABLE', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'store.db');
    const store = createSqliteReceiptStore({ path, busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    await expect(store.record([{ group: 'g', source: 's', messageId: newMessageId(), state: 'received' }])).rejects.toMatchObject({
      code: 'SB_STORE_UNAVAILABLE',
      retryable: true,
    });
    other.exec('ROLLBACK');
    other.close();
    expect(await store.record([{ group: 'g', source: 's', messageId: newMessageId(), state: 'received' }])).toEqual(['created']);
    await store.close();
  });
});

/** The stores build first claims and `processed` marks without the general merge: they must equal the core rules. */
async function expectCoreRules(store: ReceiptStore, clock: TestClock): Promise<void> {
  const problem = { type: 'urn:x', title: 'x', status: 500, code: 'SB_HANDLER_FAILED', detail: 'boom' };
  const request = { group: 'g', source: 's', messageId: newMessageId(), owner: 'w', leaseMs: 1000, type: 't', topic: 'q' };
  expect(await store.claim(request)).toStrictEqual(decideClaim(undefined, request, clock.now()));
  const bare = { group: 'g', source: 's', messageId: newMessageId(), owner: 'w', leaseMs: 500 };
  expect(await store.claim(bare)).toStrictEqual(decideClaim(undefined, bare, clock.now()));

  const cases: {
    before: Omit<ReceiptUpdate, 'group' | 'source' | 'messageId'>[];
    update: Omit<ReceiptUpdate, 'group' | 'source' | 'messageId'>;
  }[] = [
    { before: [], update: { state: 'processed', attempt: 2, result: 'r', type: 't' } },
    { before: [], update: { state: 'processed' } },
    { before: [{ state: 'processing', attempt: 1, type: 't' }], update: { state: 'processed', attempt: 1, result: '{}' } },
    { before: [{ state: 'processing', attempt: 3 }], update: { state: 'processed', attempt: 1, type: 'other', topic: 'q' } },
    { before: [{ state: 'failed', attempt: 2, error: problem }], update: { state: 'processed', at: 1 } },
    { before: [{ state: 'dead-lettered', attempt: 1, error: problem, topic: 'q' }], update: { state: 'processed', attempt: 4 } },
    { before: [{ state: 'processed', attempt: 1, result: 'first' }], update: { state: 'processed', attempt: 2, result: 'second' } },
  ];
  for (const { before, update } of cases) {
    const key = { group: 'g', source: 's', messageId: newMessageId() };
    await store.record(before.map((b) => ({ ...key, ...b })));
    clock.advance(7);
    const current = await store.get(key);
    const expected = mergeReceipt(current, { ...key, ...update }, clock.now());
    const outcome = expected === undefined ? 'ignored' : current === undefined ? 'created' : 'updated';
    expect(await store.record([{ ...key, ...update }])).toEqual([outcome]);
    expect(await store.get(key)).toStrictEqual(expected ?? current);
  }
}
