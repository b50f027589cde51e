import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineContract, message } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteDeadLetterStore, createSqliteReceiptStore, openDatabase } from '@switchboard/sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { until } from './harness.js';

// The child processes run the built packages (`npx tsc -b packages/messaging`), as users do.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-messaging-crash-'));
const children: ChildProcess[] = [];

const serviceB = defineContract({
  name: 'service-b',
  messages: { 'work.submitted': message({ schema: z.object({ n: z.number().int() }) }) },
});

function start(script: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<NodeJS.Signals | number | null> } {
  const child = spawn(process.execPath, [join(fixtures, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  return { child, lines, exited };
}

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @switchboard/messaging first: npx tsc -b packages/messaging');
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('messaging on SQLite under process crashes', () => {
  it('a consumer SIGKILLed mid-batch loses nothing, and each side effect happens once', async () => {
    const path = join(dir, 'consumer.db');
    const total = 3000;
    const senderBroker = createSqliteBroker({ path });
    const sender = createMessaging({ broker: senderBroker, service: 'service-a', deadLetters: false });
    const ids = (
      await Promise.all(
        Array.from({ length: total / 500 }, (_, batch) =>
          sender.sendBatch(
            serviceB,
            Array.from({ length: 500 }, (_, i) => ({ name: 'work.submitted' as const, data: { n: batch * 500 + i } })),
          ),
        ),
      )
    ).flat();
    const db = openDatabase(path);
    try {
      const effects = () => {
        const exists = db.prepare("SELECT count(*) AS c FROM sqlite_master WHERE name = 'effects'").get() as { c: number };
        return exists.c === 0 ? 0 : (db.prepare('SELECT count(*) AS c FROM effects').get() as { c: number }).c;
      };
      const first = start('consumer.mjs', [path]);
      await until(() => first.lines.includes('ready'), 'the first consumer', 20_000);
      await until(() => effects() >= 500, 'the first consumer to handle 500 messages', 60_000);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      const beforeCrash = effects();
      expect(beforeCrash).toBeLessThan(total);

      const second = start('consumer.mjs', [path]);
      await until(() => second.lines.includes('ready'), 'the second consumer', 20_000);
      await until(
        () => (db.prepare('SELECT count(DISTINCT message_id) AS c FROM effects').get() as { c: number }).c >= total,
        'every message to be handled',
        90_000,
      );
      const rows = db.prepare('SELECT message_id AS id, count(*) AS c FROM effects GROUP BY message_id').all() as {
        id: string;
        c: number;
      }[];
      const handled = new Set(rows.map((r) => r.id));
      expect(ids.filter((s) => !handled.has(s.messageId))).toEqual([]);
      expect(rows.filter((r) => r.c !== 1)).toEqual([]);
      const receipts = createSqliteReceiptStore({ path });
      await until(
        async () => (await receipts.list({ state: 'processed', limit: 1000 })).items.length === 1000,
        'processed receipts',
        10_000,
      );
      for (const sent of ids.slice(0, 50))
        expect((await receipts.get({ group: 'service-b', source: 'service-a', messageId: sent.messageId }))?.state).toBe('processed');
      await receipts.close();
    } finally {
      db.close();
      await sender.close();
      await senderBroker.close();
    }
  });

  it('a publisher killed after send resolved: every confirmed message is still delivered and processed', async () => {
    const path = join(dir, 'publisher.db');
    const publisher = start('publisher.mjs', [path, '5000']);
    await until(() => publisher.lines.filter((l) => l.startsWith('sent ')).length >= 200, 'the publisher to send 200 messages', 60_000);
    publisher.child.kill('SIGKILL');
    expect(await publisher.exited).toBe('SIGKILL');
    const confirmed = publisher.lines.filter((l) => l.startsWith('sent ')).map((l) => l.slice(5));
    expect(publisher.lines).not.toContain('done');

    const receipts = createSqliteReceiptStore({ path });
    const broker = createSqliteBroker({ path, pollIntervalMs: 5 });
    const deadLetters = createSqliteDeadLetterStore({ path });
    const consumer = createMessaging({ broker, service: 'service-b', receipts, deadLetters });
    const handled = new Set<string>();
    consumer.handle(serviceB, 'work.submitted', (_data, ctx) => {
      handled.add(ctx.messageId);
    });
    await consumer.start();
    try {
      await until(() => confirmed.every((id) => handled.has(id)), 'every confirmed message', 60_000);
      for (const id of confirmed) {
        const receipt = await consumer.receipts.wait(id, { timeoutMs: 5000 });
        expect(receipt?.groups[0]?.state).toBe('processed');
      }
    } finally {
      await consumer.close();
      await broker.close();
      await receipts.close();
      await deadLetters.close();
    }
  });
});
