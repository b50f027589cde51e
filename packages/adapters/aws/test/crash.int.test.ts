import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineContract, message } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { openDatabase } from '@switchboard/sqlite';
import { type FauxqsServer, startFauxqsServer, waitFor } from '@switchboard/testkit';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createSnsSqsBroker } from '../src/index.js';

// The consumer processes run the built packages: `npx tsc -b packages/adapters/aws packages/messaging packages/adapters/sqlite`.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-aws-crash-'));
const children: ChildProcess[] = [];
let emulator: FauxqsServer;

// The contract of fixtures/contract.mjs, which the consumer processes use.
const serviceB = defineContract({
  name: 'service-b',
  messages: { 'work.submitted': message({ schema: z.object({ n: z.number().int() }) }) },
});

function start(args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<NodeJS.Signals | number | null> } {
  const child = spawn(process.execPath, [join(fixtures, 'crash-consumer.mjs'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
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

beforeAll(async () => {
  if (!existsSync(built)) throw new Error('build @switchboard/aws first: npx tsc -b packages/adapters/aws');
  emulator = await startFauxqsServer();
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(async () => {
  await emulator?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a consumer SIGKILLed mid-batch: its messages reappear after the visibility timeout, and each side effect happens once', {
  timeout: 180_000,
}, async () => {
  const total = 3000;
  const prefix = `sbk${randomBytes(3).toString('hex')}-`;
  const path = join(dir, 'service-b.db');
  const senderBroker = await createSnsSqsBroker({
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    prefix,
  });
  const sender = createMessaging({ broker: senderBroker, service: 'service-a', deadLetters: false });
  const db = openDatabase(path);
  db.exec(
    'CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, n INTEGER NOT NULL, attempt INTEGER NOT NULL, pid INTEGER NOT NULL)',
  );
  const count = (sql: string) => (db.prepare(sql).get() as { c: number }).c;
  try {
    // The receiver's queue is declared before the first send, so nothing sent before it starts is lost.
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
    const args = [emulator.endpoint, prefix, path];
    const first = start(args);
    await waitFor(() => first.lines.includes('ready'), 'the first consumer', 30_000);
    await waitFor(() => count('SELECT count(*) AS c FROM effects') >= 500, 'the first consumer to handle 500 messages', 60_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const beforeCrash = count('SELECT count(*) AS c FROM effects');
    expect(beforeCrash).toBeLessThan(total);

    const second = start(args);
    await waitFor(() => second.lines.includes('ready'), 'the second consumer', 30_000);
    await waitFor(() => count('SELECT count(DISTINCT message_id) AS c FROM effects') >= total, 'every message to be handled', 120_000);
    second.child.kill('SIGKILL');
    await second.exited;

    const rows = db.prepare('SELECT message_id AS id, count(*) AS c FROM effects GROUP BY message_id').all() as { id: string; c: number }[];
    const handled = new Set(rows.map((row) => row.id));
    const lost = ids.filter((sent) => !handled.has(sent.messageId));
    const repeated = rows.filter((row) => row.c !== 1);
    // Messages the killed consumer had received and not finished came back (receive count 2 or more).
    const redelivered = count('SELECT count(*) AS c FROM effects WHERE attempt > 1');
    console.log(
      `aws crash test: sent ${ids.length}, handled ${handled.size} distinct, lost ${lost.length}, effects repeated ${repeated.length}, ` +
        `handled before the kill ${beforeCrash}, handled on a redelivery ${redelivered}`,
    );
    expect(ids).toHaveLength(total);
    expect(lost).toEqual([]);
    expect(repeated).toEqual([]);
  } finally {
    db.close();
    await sender.close();
    await senderBroker.close();
  }
});
