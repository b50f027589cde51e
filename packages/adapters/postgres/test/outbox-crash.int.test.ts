import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createOutboxRelay } from '@switchboard/core';
import { DeliveryRecorder, randomName, testMessage, waitFor } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';
import { createPostgresOutbox } from '../src/outbox.js';

// The relay child runs the built package (`npx tsc -b packages/adapters/postgres`), as users do.
const connectionString = process.env.SWITCHBOARD_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const child = fileURLToPath(new URL('./outbox-crash-relay.mjs', import.meta.url));
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const suffix = randomBytes(5).toString('hex');
const [table, orders, schema] = [`sbt_outbox_${suffix}`, `sbt_orders_${suffix}`, `sbt_outbox_broker_${suffix}`];
const pool = new pg.Pool({ connectionString, max: 4 });
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @switchboard/postgres first: npx tsc -b packages/adapters/postgres');
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await pool.query(`DROP TABLE IF EXISTS ${table}, ${orders}`);
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

it('a relay SIGKILLed between confirm and mark: a new relay republishes the rest, duplicates only with the same MessageIds', async () => {
  const topic = randomName('orders');
  const group = randomName('billing');
  const [total, batchSize, hangAfter, leaseMs] = [300, 40, 3, 300];

  const outbox = createPostgresOutbox({ pool, table });
  await pool.query(`CREATE TABLE ${orders} (id TEXT PRIMARY KEY)`);
  const ids: string[] = [];
  for (let t = 0; t < total / 10; t++) {
    const messages = Array.from({ length: 10 }, () => testMessage(topic));
    ids.push(...messages.map((m) => m.id));
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${orders} (id) SELECT unnest($1::text[])`, [messages.map((m) => m.id)]);
      await outbox.enqueue(client, messages);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  const consumer = createPostgresBroker({ url: connectionString, schema, pollIntervalMs: 20 });
  await consumer.declareGroup(topic, group);
  const recorder = new DeliveryRecorder();
  await consumer.subscribe({ topic, group, maxInFlight: 256 }, recorder.handler);
  try {
    const relayProcess = spawn(
      process.execPath,
      [child, connectionString, table, schema, String(hangAfter), String(batchSize), String(leaseMs)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(relayProcess);
    const confirmed: string[][] = [];
    let buffer = '';
    relayProcess.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('confirmed ')) confirmed.push(line.slice('confirmed '.length).split(','));
    });
    const exited = new Promise((resolve) => relayProcess.on('exit', (_code, signal) => resolve(signal)));
    await waitFor(() => confirmed.length === hangAfter, `${hangAfter} confirmed batches`, 30_000);
    relayProcess.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const unmarked = confirmed[hangAfter - 1] as string[];
    expect(confirmed.flat()).toEqual(ids.slice(0, hangAfter * batchSize));
    expect(await outbox.pendingCount()).toBe(total - (hangAfter - 1) * batchSize);

    const publisher = createPostgresBroker({ url: connectionString, schema });
    const relay = createOutboxRelay({ store: outbox, broker: publisher, batchSize, leaseMs: 5000, pollIntervalMs: 20 });
    relay.start();
    await recorder.waitForUnique(total, 60_000);
    await waitFor(() => recorder.count >= total + unmarked.length, 'the republished batch to be delivered', 10_000);
    await relay.stop();
    await publisher.close();

    expect(recorder.unique()).toEqual(new Set(ids));
    expect(await outbox.pendingCount()).toBe(0);
    expect(recorder.count).toBe(total + unmarked.length);
    expect(new Set(recorder.duplicates())).toEqual(new Set(unmarked));
  } finally {
    await consumer.close();
    await outbox.close();
  }
});
