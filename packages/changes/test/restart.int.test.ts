import { changes, defineContract } from '@switchboard/core';
import { createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createPostgresBroker } from '@switchboard/postgres';
import { delay, PrivatePostgresServer, waitFor } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { createPostgresChangeSource, parseLsn } from '../src/index.js';

// Restarts under a running change source. The broker goes down while rows are committed: the slot
// must not move past what the broker did not confirm, the source waits and retries, and once the
// broker is back everything arrives. The database restarts: the source reconnects and resumes from
// its slot. Two private servers: the database the changes come from (wal_level = logical), and the
// one the PostgreSQL broker runs on; each is stopped and started again.
const database = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });
const brokerServer = new PrivatePostgresServer();
let db: pg.Client;

beforeAll(async () => {
  await Promise.all([database.start(), brokerServer.start()]);
  db = new pg.Client(database.url);
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await Promise.all([database.dispose(), brokerServer.dispose()]);
});

const confirmedFlush = async (slot: string) =>
  parseLsn(
    (await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]))
      .rows[0]?.lsn ?? '0/0',
  );

it('broker down, then up: the slot does not advance meanwhile, the source waits and resumes, nothing is lost', {
  timeout: 150_000,
}, async () => {
  await db.query('CREATE TABLE events_src (id int PRIMARY KEY, v text NOT NULL)');
  const contract = defineContract({
    name: 'outage',
    changes: [changes('events_src', { columns: z.object({ id: z.number(), v: z.string() }), key: 'id', insert: 'row.created' })],
  });
  const publisherBroker = createPostgresBroker({ url: brokerServer.url, onError: () => {} });
  const consumerBroker = createPostgresBroker({ url: brokerServer.url, pollIntervalMs: 50, onError: () => {} });
  const handled = new Map<number, number>();
  const receiver = createMessaging({
    broker: consumerBroker,
    service: 'outage-receiver',
    deadLetters: createMemoryDeadLetterStore(),
    receipts: createMemoryReceiptStore(),
  });
  receiver.on(contract, 'row.created', (data) => {
    handled.set(data.id, (handled.get(data.id) ?? 0) + 1);
  });
  await receiver.start();
  const errors: unknown[] = [];
  const source = createPostgresChangeSource({
    connection: database.url,
    contract,
    broker: publisherBroker,
    slot: 'outage_slot',
    publication: 'outage_pub',
    create: true,
    deadLetters: false,
    batchSize: 20,
    retry: { baseMs: 50, maxMs: 500 },
    onError: (error) => errors.push(error),
  });
  try {
    await source.start();
    for (let id = 1; id <= 50; id++) await db.query("INSERT INTO events_src VALUES ($1, 'before')", [id]);
    await waitFor(() => handled.size === 50, '50 rows before the outage', 30_000);
    await waitFor(() => source.stats().pending === 0, 'nothing pending');
    const before = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn ?? '0/0';

    await brokerServer.stop('fast');
    for (let id = 51; id < 250; id++) await db.query("INSERT INTO events_src VALUES ($1, 'during')", [id]);
    // The last transaction of the outage ends after this position.
    const last = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn ?? '0/0';
    await db.query("INSERT INTO events_src VALUES (250, 'during')");
    await waitFor(() => source.stats().retries >= 3, 'retried publishes', 30_000);
    await delay(1000);
    // Nothing committed during the outage is confirmed to the slot.
    expect(await confirmedFlush('outage_slot')).toBeLessThanOrEqual(parseLsn(before));
    expect(source.stats().pending).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);

    await brokerServer.start();
    await waitFor(() => handled.size === 250, 'every row after the broker came back', 60_000);
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
    await waitFor(() => source.stats().pending === 0, 'nothing pending', 10_000);
    // Confirmed at the end: the slot moved past the outage's last transaction.
    const moved = Date.now() + 15_000;
    while ((await confirmedFlush('outage_slot')) <= parseLsn(last) && Date.now() < moved) await delay(100);
    expect(await confirmedFlush('outage_slot')).toBeGreaterThan(parseLsn(last));
  } finally {
    await source.close();
    await receiver.close();
    await publisherBroker.close();
    await consumerBroker.close();
  }
});

it('the database restarts: the source reconnects, resumes from the slot, and nothing is lost', { timeout: 150_000 }, async () => {
  await db.query('CREATE TABLE restart_src (id int PRIMARY KEY)');
  const contract = defineContract({
    name: 'restart',
    changes: [changes('restart_src', { columns: z.object({ id: z.number() }), key: 'id', insert: 'row.created' })],
  });
  const publisherBroker = createPostgresBroker({ url: brokerServer.url, onError: () => {} });
  const consumerBroker = createPostgresBroker({ url: brokerServer.url, pollIntervalMs: 50, onError: () => {} });
  const handled = new Map<number, number>();
  const receiver = createMessaging({
    broker: consumerBroker,
    service: 'restart-receiver',
    deadLetters: createMemoryDeadLetterStore(),
    receipts: createMemoryReceiptStore(),
  });
  receiver.on(contract, 'row.created', (data) => {
    handled.set(data.id, (handled.get(data.id) ?? 0) + 1);
  });
  await receiver.start();
  const source = createPostgresChangeSource({
    connection: database.url,
    contract,
    broker: publisherBroker,
    slot: 'restart_slot',
    publication: 'restart_pub',
    create: true,
    deadLetters: false,
    retry: { baseMs: 100, maxMs: 1000 },
    onError: () => {},
  });
  try {
    await source.start();
    await db.query('INSERT INTO restart_src SELECT generate_series(1, 100)');
    await waitFor(() => handled.size === 100, '100 rows before the restart', 30_000);
    await db.end();
    await database.stop('immediate');
    await database.start();
    db = new pg.Client(database.url);
    await db.connect();
    await db.query('INSERT INTO restart_src SELECT generate_series(101, 300)');
    await waitFor(() => handled.size === 300, 'every row after the restart', 60_000);
    expect(source.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
  } finally {
    await source.close();
    await receiver.close();
    await publisherBroker.close();
    await consumerBroker.close();
  }
});
