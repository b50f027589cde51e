import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Broker, Delivery } from '@switchboard/core';
import { changes, defineContract } from '@switchboard/core';
import { createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteOutbox } from '@switchboard/sqlite';
import { delay, waitFor } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { installSqliteChangeTriggers } from '../src/index.js';

// The relay runs in a child process on the built package (`npx tsc -b packages/changes`), as users
// run it, and is SIGKILLed mid-stream. The application (this process) keeps writing rows to the
// same SQLite file meanwhile; its triggers put every change into the outbox in the row's transaction.
const child = fileURLToPath(new URL('./sqlite-change-relay-crash-child.mjs', import.meta.url));
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-change-crash-'));
const children: ChildProcess[] = [];
const table = 'items';
const leaseMs = 400;

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @switchboard/changes first: npx tsc -b packages/changes');
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts a relay process; resolves once it runs, with the confirmed batch sizes it reports as it goes. */
async function startRelay(appPath: string, brokerPath: string, hangAfter: number, batchSize: number) {
  const relay = spawn(process.execPath, [child, appPath, brokerPath, table, String(hangAfter), String(batchSize), String(leaseMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(relay);
  const confirmed: number[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => relay.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    relay.once('exit', (code) => reject(new Error(`the relay exited before it was ready (${code})`)));
    createInterface({ input: relay.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
      else if (line.startsWith('confirmed ')) confirmed.push(Number(line.split(' ')[2]));
    });
  });
  return {
    confirmed,
    async kill() {
      relay.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    },
  };
}

it('a change relay SIGKILLed mid-stream: restarted, it loses nothing, and the receiver inbox absorbs the republished changes', {
  timeout: 170_000,
}, async () => {
  const appPath = join(dir, 'app.db');
  const brokerPath = join(dir, 'broker.db');
  const app = new Database(appPath);
  app.pragma('journal_mode = WAL');
  app.pragma('busy_timeout = 10000');
  app.exec(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`);
  const outbox = createSqliteOutbox({ database: app });
  const contract = defineContract({
    name: 'crash',
    changes: [
      changes(table, { columns: z.object({ id: z.number(), n: z.number() }), key: 'id', insert: 'item.created', update: 'item.changed' }),
    ],
  });
  installSqliteChangeTriggers(app, contract);

  // The receiver: every delivery counted by MessageId as the broker hands it over, and the handler's
  // side effect (one per change: the row's id and n) counted behind the inbox.
  const inner = createSqliteBroker({ path: brokerPath, pollIntervalMs: 10 });
  const deliveries = new Map<string, number>();
  const counting: Broker = {
    name: inner.name,
    binding: inner.binding,
    capabilities: inner.capabilities,
    publish: (m) => inner.publish(m),
    publishBatch: (m) => inner.publishBatch(m),
    declareGroup: (t, g) => inner.declareGroup(t, g),
    subscribe: (options, handler) =>
      inner.subscribe(options, (delivery: Delivery) => {
        deliveries.set(delivery.id, (deliveries.get(delivery.id) ?? 0) + 1);
        return handler(delivery);
      }),
    close: () => inner.close(),
  };
  const effects = new Map<string, number>();
  const effectIds = new Map<string, string>();
  const receiver = createMessaging({
    broker: counting,
    service: 'crash-receiver',
    deadLetters: createMemoryDeadLetterStore(),
    receipts: createMemoryReceiptStore(),
    maxInFlight: 64,
  });
  receiver.on(contract, '*', (data, context) => {
    const { id, n } = data as { id: number; n: number };
    const effect = `${id}:${n}`;
    effects.set(effect, (effects.get(effect) ?? 0) + 1);
    effectIds.set(effect, context.messageId);
  });
  await receiver.start();

  // The application: inserts in transactions of 1 to 10 rows and an update of an earlier row, until
  // stopped; and one transaction in ten rolled back (its changes must never arrive).
  const expected = new Set<string>();
  const rolledBack = new Set<string>();
  let writing = true;
  let nextId = 1;
  const n = new Map<number, number>();
  const insert = app.prepare(`INSERT INTO ${table} (id, n) VALUES (?, 0)`);
  const bump = app.prepare(`UPDATE ${table} SET n = n + 1 WHERE id = ?`);
  const writer = (async () => {
    let round = 0;
    while (writing) {
      const rows = 1 + Math.floor(Math.random() * 10);
      const committed = [...n.keys()];
      const target = committed.length === 0 ? undefined : committed[Math.floor(Math.random() * committed.length)];
      const abort = ++round % 10 === 0;
      const first = nextId;
      try {
        app.transaction(() => {
          for (let id = first; id < first + rows; id++) insert.run(id);
          if (target !== undefined) bump.run(target);
          if (abort) throw new Error('rolled back');
        })();
        nextId += rows;
        for (let id = first; id < first + rows; id++) {
          expected.add(`${id}:0`);
          n.set(id, 0);
        }
        if (target !== undefined) {
          const moved = (n.get(target) ?? 0) + 1;
          n.set(target, moved);
          expected.add(`${target}:${moved}`);
        }
      } catch (error) {
        if ((error as Error).message !== 'rolled back') throw error;
        nextId += rows; // never used again: a change of these ids can only come from the rolled-back transaction
        for (let id = first; id < first + rows; id++) rolledBack.add(`${id}:0`);
      }
      await delay(2);
    }
  })();

  try {
    // 1. Killed inside its third batch, after the broker confirmed it and before the outbox marked it.
    const first = await startRelay(appPath, brokerPath, 3, 40);
    await waitFor(() => first.confirmed.length === 3, '3 confirmed batches', 30_000);
    await first.kill();
    const unmarked = first.confirmed[2] ?? 0;
    expect(unmarked).toBeGreaterThan(0);

    // 2. Killed at an arbitrary moment while it relays.
    const second = await startRelay(appPath, brokerPath, 0, 40);
    await waitFor(() => second.confirmed.length >= 10, '10 batches', 30_000);
    await delay(Math.floor(Math.random() * 200));
    await second.kill();

    // 3. Runs to the end.
    const third = await startRelay(appPath, brokerPath, 0, 40);
    await delay(1500);
    writing = false;
    await writer;
    await waitFor(() => [...expected].every((e) => effects.has(e)), 'every committed change handled', 60_000);
    await waitFor(
      () => app.prepare('SELECT count(*) FROM sb_outbox WHERE sent_at IS NULL').pluck().get() === 0,
      'the outbox drained',
      30_000,
    );
    await delay(1000); // anything still in flight would show up as an extra effect
    await third.kill();

    const lost = [...expected].filter((e) => !effects.has(e));
    const repeatedEffects = [...effects.values()].filter((count) => count > 1);
    const duplicates = [...deliveries.values()].reduce((sum, count) => sum + count - 1, 0);
    expect(expected.size).toBeGreaterThan(200);
    expect(rolledBack.size).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    // Exactly the committed changes: none of a rolled-back transaction, none twice behind the inbox.
    expect(effects.size).toBe(expected.size);
    expect([...rolledBack].filter((e) => effects.has(e))).toEqual([]);
    expect(repeatedEffects).toEqual([]);
    // The batch confirmed before the first kill was delivered again, with the same MessageIds, and absorbed.
    expect(duplicates).toBeGreaterThanOrEqual(unmarked);
    const redelivered = [...deliveries].filter(([, count]) => count > 1).map(([id]) => id);
    const effectById = new Set(effectIds.values());
    expect(redelivered.every((id) => effectById.has(id))).toBe(true);
    console.log(
      `sqlite change relay crash: ${expected.size} committed changes, ${rolledBack.size} rolled back, 0 lost, ${duplicates} duplicate deliveries absorbed by the inbox (${unmarked} in the unmarked batch)`,
    );
  } finally {
    writing = false;
    await writer.catch(() => {});
    await receiver.close();
    await inner.close();
    await outbox.close();
    app.close();
  }
});
