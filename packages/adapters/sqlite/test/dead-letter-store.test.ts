import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newMessageId } from '@switchboard/core';
import { createSqliteDeadLetterStore } from '@switchboard/sqlite';
import { describeDeadLetterStoreConformance } from '@switchboard/testkit';
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
