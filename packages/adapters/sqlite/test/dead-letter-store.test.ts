import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newMessageId } from '@switchboard/core';
import { createSqliteDeadLetterStore } from '@switchboard/sqlite';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';

describeDeadLetterStoreConformance('sqlite', ({ clock }) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-dlq-'));
  const path = join(dir, 'store.db');
  return {
    store: createSqliteDeadLetterStore({ path, clock }),
    second: createSqliteDeadLetterStore({ path, clock }),
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

it('SqliteDeadLetterStore keeps entries and bytes across reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-dlq-'));
  try {
    const path = join(dir, 'store.db');
    const body = Uint8Array.from([1, 2, 3, 0, 255]);
    const first = createSqliteDeadLetterStore({ path });
    const added = await first.add({
      messageId: newMessageId(),
      source: '',
      topic: 't',
      group: 'g',
      headers: { a: 'b' },
      body,
      reason: 'not-cloudevent',
      attempts: [],
    });
    await first.close();
    const second = createSqliteDeadLetterStore({ path });
    const got = await second.get(added.id);
    expect(Array.from(got?.body ?? [])).toEqual([1, 2, 3, 0, 255]);
    expect(got).toMatchObject({ reason: 'not-cloudevent', headers: { a: 'b' }, attempts: [] });
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('SqliteDeadLetterStore refuses a table of the earlier layout (no source column) with SB_CONFIG_INVALID', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE sb_dead_letters (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, grp TEXT NOT NULL)');
  expect(() => createSqliteDeadLetterStore({ database: db })).toThrow(expect.objectContaining({ code: 'SB_CONFIG_INVALID' }));
  db.close();
});

it('SqliteDeadLetterStore reports a constraint the engine enforces as SB_STORE_REFUSED and rolls the batch back', async () => {
  const db = new Database(':memory:');
  const store = createSqliteDeadLetterStore({ database: db });
  db.exec(
    `CREATE TRIGGER small_topic BEFORE INSERT ON sb_dead_letters WHEN length(NEW.topic) > 8 BEGIN SELECT RAISE(ABORT, 'topic too long'); END`,
  );
  const entry = (topic: string) => ({
    messageId: newMessageId(),
    source: '/s',
    topic,
    group: 'g',
    headers: {},
    body: new Uint8Array(),
    reason: 'max-attempts',
    attempts: [],
  });
  await expect(store.addBatch([entry('ok'), entry('much-too-long')])).rejects.toMatchObject({ code: 'SB_STORE_REFUSED', retryable: false });
  expect((await store.list()).items).toEqual([]);
  expect((await store.add(entry('ok'))).topic).toBe('ok');
  await store.close();
  db.close();
});
