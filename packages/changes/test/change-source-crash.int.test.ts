import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Broker, Delivery } from '@switchboard/core';
import { changes, defineContract } from '@switchboard/core';
import { createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createPostgresBroker } from '@switchboard/postgres';
import { delay, PrivatePostgresServer, waitFor } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';

// The change source runs in a child process on the built package (`npx tsc -b packages/changes`),
// as users run it, and is SIGKILLed mid-stream. Its own PostgreSQL server (wal_level = logical)
// holds the table, the slot and the PostgreSQL broker the events go through.
const server = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });
const child = fileURLToPath(new URL('./change-source-crash-child.mjs', import.meta.url));
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const [table, slot, publication, schema] = ['crash_items', 'crash_slot', 'crash_pub', 'crash_broker'];
const children: ChildProcess[] = [];
let db: pg.Client;

beforeAll(async () => {
  if (!existsSync(built)) throw new Error('build @switchboard/changes first: npx tsc -b packages/changes');
  await server.start();
  db = new pg.Client(server.url);
  await db.connect();
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await db?.end();
  await server.dispose();
});

/** Starts a change source process; resolves once it streams, with the confirmed batch sizes it reports as it goes. */
async function startSource(hangAfter: number, batchSize: number) {
  const process_ = spawn(process.execPath, [child, server.url, table, slot, publication, schema, String(hangAfter), String(batchSize)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(process_);
  const confirmed: number[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => process_.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    process_.once('exit', (code) => reject(new Error(`the change source exited before it was ready (${code})`)));
    createInterface({ input: process_.stdout! }).on('line', (line) => {
      if (line === 'ready') resolve();
      else if (line.startsWith('confirmed ')) confirmed.push(Number(line.split(' ')[2]));
    });
  });
  return {
    confirmed,
    async kill() {
      process_.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
    },
  };
}

it('a change source SIGKILLed mid-stream: restarted, it loses nothing, and the receiver inbox absorbs the republished changes', {
  timeout: 170_000,
}, async () => {
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, n int NOT NULL)`);
  await db.query(`CREATE PUBLICATION ${publication} FOR TABLE ${table}`);
  await db.query(`SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`);
  const contract = defineContract({
    name: 'crash',
    changes: [
      changes(table, { columns: z.object({ id: z.number(), n: z.number() }), key: 'id', insert: 'item.created', update: 'item.changed' }),
    ],
  });

  // The receiver: every delivery counted by MessageId as the broker hands it over, and the handler's
  // side effect (one per event: the row's id and n) counted behind the inbox.
  const inner = createPostgresBroker({ url: server.url, schema, pollIntervalMs: 50 });
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

  // The writer: inserts in transactions of 1 to 10 rows, and updates of earlier rows, until stopped.
  const expected = new Set<string>();
  let writing = true;
  let nextId = 1;
  const writer = (async () => {
    const client = new pg.Client(server.url);
    await client.connect();
    const n = new Map<number, number>();
    while (writing) {
      const rows = 1 + Math.floor(Math.random() * 10);
      await client.query('BEGIN');
      for (let i = 0; i < rows; i++, nextId++) {
        await client.query(`INSERT INTO ${table} VALUES ($1, 0)`, [nextId]);
        n.set(nextId, 0);
      }
      const target = 1 + Math.floor(Math.random() * (nextId - 1));
      await client.query(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [target]);
      await client.query('COMMIT');
      for (let id = nextId - rows; id < nextId; id++) expected.add(`${id}:0`);
      const moved = (n.get(target) ?? 0) + 1;
      n.set(target, moved);
      expected.add(`${target}:${moved}`);
      await delay(2);
    }
    await client.end();
  })();

  try {
    // 1. Killed inside its third batch, after the broker confirmed it and before the slot moved past it.
    const first = await startSource(3, 40);
    await waitFor(() => first.confirmed.length === 3, '3 confirmed batches', 30_000);
    await first.kill();
    const unconfirmed = first.confirmed[2] ?? 0;
    expect(unconfirmed).toBeGreaterThan(0);

    // 2. Killed at an arbitrary moment while it streams.
    const second = await startSource(0, 40);
    await waitFor(() => second.confirmed.length >= 10, '10 batches', 30_000);
    await delay(Math.floor(Math.random() * 200));
    await second.kill();

    // 3. Runs to the end.
    const third = await startSource(0, 40);
    await delay(1500);
    writing = false;
    await writer;
    await waitFor(() => [...expected].every((e) => effects.has(e)), 'every committed change handled', 60_000);
    await delay(1000); // anything still in flight would show up as an extra effect
    await third.kill();

    const lost = [...expected].filter((e) => !effects.has(e));
    const repeatedEffects = [...effects.values()].filter((count) => count > 1);
    const duplicates = [...deliveries.values()].reduce((sum, count) => sum + count - 1, 0);
    expect(lost).toEqual([]);
    expect(effects.size).toBe(expected.size);
    expect(repeatedEffects).toEqual([]);
    // The batch confirmed before the first kill was delivered again, with the same MessageIds, and absorbed.
    expect(duplicates).toBeGreaterThanOrEqual(unconfirmed);
    const redelivered = [...deliveries].filter(([, count]) => count > 1).map(([id]) => id);
    const effectById = new Set(effectIds.values());
    expect(redelivered.every((id) => effectById.has(id))).toBe(true);
  } finally {
    writing = false;
    await writer.catch(() => {});
    await receiver.close();
    await inner.close();
  }
});
