import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { AnyContract, Broker, CloudEvent, OutgoingMessage } from '@switchboard/core';
import { changes, decodeCloudEvent, defineContract } from '@switchboard/core';
import { createMemoryBlobStore, createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { delay, PrivatePostgresServer, randomName, waitFor } from '@switchboard/testkit';
import pg from 'pg';
import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ChangeSource, changeId, createPostgresChangeSource, type PostgresChangeSourceOptions, parseLsn } from '../src/index.js';

const server = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });
let db: pg.Client;
let systemId: string;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  await server.start();
  db = new pg.Client(server.url);
  await db.connect();
  systemId = (await db.query<{ id: string }>('SELECT system_identifier::text AS id FROM pg_control_system()')).rows[0]?.id ?? '';
});

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

afterAll(async () => {
  await db?.end();
  await server.dispose();
});

const Order = z.object({
  id: z.number().int(),
  status: z.enum(['new', 'paid', 'shipped']),
  total: z.string(),
  placed_at: z.string(),
  tags: z.array(z.string()).nullable(),
});

interface Fixture {
  readonly table: string;
  readonly slot: string;
  readonly publication: string;
  readonly contract: AnyContract;
}

/** A fresh table, publication and slot (created before any change, so every change is in the slot). */
async function fixture(
  columns = `id int PRIMARY KEY, status text NOT NULL, total numeric(10,2) NOT NULL DEFAULT 0,
             placed_at timestamptz NOT NULL DEFAULT now(), tags text[]`,
  contractOf: (table: string) => AnyContract = (table) =>
    defineContract({
      name: 'shop',
      changes: [changes(table, { columns: Order, key: 'id', insert: 'order.created', update: 'order.updated', delete: 'order.deleted' })],
    }),
): Promise<Fixture> {
  const table = randomName('orders').replaceAll('-', '_');
  const slot = randomName('slot').replaceAll('-', '_');
  const publication = randomName('pub');
  await db.query(`CREATE TABLE ${table} (${columns})`);
  await db.query(`CREATE PUBLICATION "${publication}" FOR TABLE ${table}`);
  await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  // A copy at the same position, never streamed from: `expectedIds` reads the changes from it.
  await db.query('SELECT pg_copy_logical_replication_slot($1, $2)', [slot, `${slot}_peek`]);
  cleanup.push(() =>
    db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1) AND NOT active', [
      [slot, `${slot}_peek`],
    ]),
  );
  return { table, slot, publication, contract: contractOf(table) };
}

interface Received {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly subject: string | undefined;
  readonly data: unknown;
  readonly event: CloudEvent;
}

/** A receiving service on `broker` with an inbox: every event of the contract, in the order its handler ran. */
async function receiver(
  broker: Broker,
  contract: AnyContract,
  options: { readonly blobs?: ReturnType<typeof createMemoryBlobStore> } = {},
) {
  const received: Received[] = [];
  const messaging: Messaging = createMessaging({
    broker,
    service: randomName('billing'),
    deadLetters: createMemoryDeadLetterStore(),
    receipts: createMemoryReceiptStore(),
    maxInFlight: 16,
    ...(options.blobs === undefined ? {} : { blobs: options.blobs }),
  });
  messaging.on(contract, '*', (data, context) => {
    received.push({
      id: context.messageId,
      type: context.type,
      source: context.source,
      subject: context.subject,
      data,
      event: context.event,
    });
  });
  await messaging.start();
  cleanup.push(() => messaging.close());
  return received;
}

function source(f: Fixture, broker: Broker, options: Partial<PostgresChangeSourceOptions> = {}): ChangeSource {
  const created = createPostgresChangeSource({
    connection: server.url,
    contract: f.contract,
    broker,
    slot: f.slot,
    publication: f.publication,
    deadLetters: createMemoryDeadLetterStore(),
    ...options,
  });
  cleanup.push(() => created.close());
  return created;
}

/** The ids the change source must give the slot's changes, computed from another decoder's reading of the same WAL (through the slot's copy). */
async function expectedIds(slot: string, publication: string): Promise<string[]> {
  const rows = await db.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
    [`${slot}_peek`, `"${publication}"`],
  );
  const parser = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  const ids: string[] = [];
  let commitLsn = 0n;
  const positions = new Map<string, number>();
  for (const row of rows.rows) {
    const message = parser.parse(row.data) as Pgoutput.Message;
    if (message.tag === 'begin') {
      commitLsn = parseLsn(message.commitLsn ?? '0/0');
      positions.clear();
    } else if (message.tag === 'insert' || message.tag === 'update' || message.tag === 'delete') {
      const table = `${message.relation.schema}.${message.relation.name}`;
      const position = positions.get(table) ?? 0;
      positions.set(table, position + 1);
      ids.push(changeId(systemId, table, commitLsn, position));
    }
  }
  return ids;
}

/** A broker whose publishes wait while `closed` is true, and take `delayMs` each. */
function gatedBroker(inner: Broker, delayMs = 0) {
  const state = { closed: false, batches: 0 };
  const wait = async () => {
    while (state.closed) await delay(5);
    if (delayMs > 0) await delay(delayMs);
  };
  const broker: Broker = {
    name: inner.name,
    binding: inner.binding,
    capabilities: inner.capabilities,
    publish: async (message: OutgoingMessage) => {
      await wait();
      await inner.publish(message);
    },
    publishBatch: async (messages: readonly OutgoingMessage[]) => {
      await wait();
      state.batches += 1;
      await inner.publishBatch(messages);
    },
    declareGroup: (topic, group) => inner.declareGroup(topic, group),
    subscribe: (options, handler) => inner.subscribe(options, handler),
    close: () => inner.close(),
  };
  return { broker, state };
}

describe('PostgreSQL change source', () => {
  it('insert, update and delete become typed events: source, subject and id from the commit', async () => {
    const f = await fixture();
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract);
    const changeSource = source(f, broker);
    await changeSource.start();

    await db.query(
      `INSERT INTO ${f.table} (id, status, total, placed_at, tags) VALUES (1, 'new', 12.5, '2026-05-01 10:00:00.123456+00', '{a,"b c"}')`,
    );
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO ${f.table} (id, status, placed_at) VALUES (2, 'new', '2026-05-02 00:00:00+00'), (3, 'new', '2026-05-03 00:00:00+00')`,
    );
    await db.query(`UPDATE ${f.table} SET status = 'paid', total = 99.99 WHERE id = 1`);
    await db.query('COMMIT');
    await db.query(`DELETE FROM ${f.table} WHERE id = 2`);
    await db.query(`TRUNCATE ${f.table}`); // not a row change: no event
    await waitFor(() => received.length === 5, '5 events', 15_000);

    const uri = `/postgres/postgres/public.${f.table}`;
    expect(received.map((r) => [r.type, r.source, r.subject])).toEqual([
      ['shop.order.created', uri, '1'],
      ['shop.order.created', uri, '2'],
      ['shop.order.created', uri, '3'],
      ['shop.order.updated', uri, '1'],
      ['shop.order.deleted', uri, '2'],
    ]);
    expect(received[0]?.data).toEqual({
      id: 1,
      status: 'new',
      total: '12.50',
      placed_at: '2026-05-01T10:00:00.123456Z',
      tags: ['a', 'b c'],
    });
    expect(received[3]?.data).toEqual({
      id: 1,
      status: 'paid',
      total: '99.99',
      placed_at: '2026-05-01T10:00:00.123456Z',
      tags: ['a', 'b c'],
    });
    expect(received[4]?.data).toEqual({ id: 2 });
    expect(received.map((r) => r.id)).toEqual(await expectedIds(f.slot, f.publication));
    // Three changes of one transaction: positions 0, 1, 2 of the same commit.
    expect(new Set(received.map((r) => r.id)).size).toBe(5);
    expect(changeSource.stats()).toMatchObject({ published: 5, deadLettered: 0, pending: 0 });
    // The slot moved past everything once the broker confirmed it.
    await waitFor(() => changeSource.stats().confirmedLsn !== '0/0', 'a confirmed position');
    const lag = await changeSource.lag();
    expect(lag.active).toBe(true);
    expect(parseLsn(lag.confirmedLsn)).toBeGreaterThan(0n);
  });

  it('a restart republishes the same ids; a clean restart on the same slot only what is new', async () => {
    const f = await fixture();
    await db.query(`SELECT pg_copy_logical_replication_slot($1, $2)`, [f.slot, `${f.slot}_copy`]);
    cleanup.push(() => db.query('SELECT pg_drop_replication_slot($1)', [`${f.slot}_copy`]));
    for (let i = 1; i <= 20; i++) await db.query(`INSERT INTO ${f.table} (id, status) VALUES ($1, 'new')`, [i]);
    await db.query(`UPDATE ${f.table} SET status = 'shipped' WHERE id <= 5`);

    const first = createMemoryBroker();
    const firstReceived = await receiver(first, f.contract);
    const one = source(f, first);
    await one.start();
    await waitFor(() => firstReceived.length === 25, '25 events', 15_000);
    await one.close();

    // The copied slot is where the first one was before it read anything: a source on it reads the
    // same changes again, as a source restarted after a crash does, and gives them the same ids.
    const second = createMemoryBroker();
    const secondReceived = await receiver(second, f.contract);
    const two = source({ ...f, slot: `${f.slot}_copy` }, second);
    await two.start();
    await waitFor(() => secondReceived.length === 25, '25 events again', 15_000);
    await two.close();
    expect(secondReceived.map((r) => r.id)).toEqual(firstReceived.map((r) => r.id));
    expect(secondReceived.map((r) => r.data)).toEqual(firstReceived.map((r) => r.data));

    // Restarted cleanly on its own slot: the confirmed changes are not read again.
    await db.query(`INSERT INTO ${f.table} (id, status) VALUES (100, 'new')`);
    const third = createMemoryBroker();
    const thirdReceived = await receiver(third, f.contract);
    const three = source(f, third);
    await three.start();
    await waitFor(() => thirdReceived.length >= 1, 'the new row', 15_000);
    await delay(300);
    expect(thirdReceived.map((r) => r.subject)).toEqual(['100']);
  });

  it('a change that fails its schema is dead-lettered with its key and the reason; the stream goes on', async () => {
    const f = await fixture();
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract);
    const deadLetters = createMemoryDeadLetterStore();
    const changeSource = source(f, broker, { deadLetters, batchSize: 64 });
    await changeSource.start();
    await db.query(`INSERT INTO ${f.table} (id, status) VALUES (1, 'new')`);
    await db.query('BEGIN');
    await db.query(`INSERT INTO ${f.table} (id, status) VALUES (2, 'lost'), (3, 'new')`); // 'lost' is not in the enum
    await db.query('COMMIT');
    await db.query(`UPDATE ${f.table} SET status = 'paid' WHERE id = 3`);
    await waitFor(() => received.length === 3, '3 good events', 15_000);

    expect(received.map((r) => `${r.type} ${r.subject}`)).toEqual(['shop.order.created 1', 'shop.order.created 3', 'shop.order.updated 3']);
    const page = await deadLetters.list();
    expect(page.items).toHaveLength(1);
    const entry = page.items[0];
    expect(entry).toMatchObject({
      reason: 'invalid',
      group: `changes.${f.slot}`,
      type: 'shop.order.created',
      key: `public.${f.table}/2`,
      topic: 'shop.events',
    });
    expect(entry?.detail).toContain(`insert of public.${f.table} row 2 does not match its schema (/status:`);
    expect(entry?.attempts[0]?.error.code).toBe('SB_MESSAGE_INVALID');
    // The dead letter is the event that would have been published: a CloudEvent with the row.
    const stored = await deadLetters.get(entry?.id ?? '');
    const event = decodeCloudEvent(stored?.headers ?? {}, stored?.body ?? new Uint8Array(), broker.binding);
    expect(event).toMatchObject({ id: entry?.messageId, subject: '2', source: `/postgres/postgres/public.${f.table}` });
    expect(event.datacontenttype).toBe('application/json');
    expect(event.data).toMatchObject({ id: 2, status: 'lost' });
    expect((await expectedIds(f.slot, f.publication))[1]).toBe(entry?.messageId);
    expect(changeSource.stats()).toMatchObject({ published: 3, deadLettered: 1 });
  });

  it('keeps the order of transactions per key', async () => {
    const f = await fixture('id int PRIMARY KEY, n int NOT NULL', (table) =>
      defineContract({
        name: 'counters',
        changes: [
          changes(table, {
            columns: z.object({ id: z.number(), n: z.number() }),
            key: 'id',
            insert: 'counter.created',
            update: 'counter.moved',
          }),
        ],
      }),
    );
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract);
    const changeSource = source(f, broker, { batchSize: 7 });
    await changeSource.start();
    const keys = 12;
    const rounds = 25;
    await db.query(`INSERT INTO ${f.table} SELECT g, 0 FROM generate_series(1, ${keys}) g`);
    // Transactions of one or more updates, keys in a shuffled order each round.
    for (let round = 1; round <= rounds; round++) {
      const order = Array.from({ length: keys }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
      for (let i = 0; i < order.length; i += 3) {
        await db.query('BEGIN');
        for (const key of order.slice(i, i + 3)) await db.query(`UPDATE ${f.table} SET n = n + 1 WHERE id = $1`, [key]);
        await db.query('COMMIT');
      }
    }
    await waitFor(() => received.length === keys * (rounds + 1), 'every change', 30_000);
    const seen = new Map<string, number[]>();
    for (const r of received) seen.set(r.subject ?? '', [...(seen.get(r.subject ?? '') ?? []), (r.data as { n: number }).n]);
    expect(seen.size).toBe(keys);
    for (const values of seen.values()) expect(values).toEqual(Array.from({ length: rounds + 1 }, (_, i) => i));
  });

  it('large rows go by claim check', async () => {
    const f = await fixture('id int PRIMARY KEY, body text NOT NULL', (table) =>
      defineContract({
        name: 'docs',
        changes: [changes(table, { columns: z.object({ id: z.number(), body: z.string() }), key: 'id', insert: 'doc.created' })],
      }),
    );
    const blobs = createMemoryBlobStore();
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract, { blobs });
    const changeSource = source(f, broker, { blobs, claimCheck: { thresholdBytes: 4096 } });
    await changeSource.start();
    const big = 'x'.repeat(100_000);
    await db.query(`INSERT INTO ${f.table} VALUES (1, 'small'), (2, $1)`, [big]);
    await waitFor(() => received.length === 2, '2 events', 15_000);
    expect(received[0]?.event.extensions?.dataref).toBeUndefined();
    expect(received[1]?.event.extensions?.dataref).toMatch(/^blob:\/\//);
    expect(received[1]?.data).toEqual({ id: 2, body: big });
  });

  it('an unchanged TOASTed column: left out of an update without REPLICA IDENTITY FULL, filled in with it', async () => {
    const f = await fixture('id int PRIMARY KEY, status text NOT NULL, body text', (table) =>
      defineContract({
        name: 'docs',
        changes: [
          changes(table, {
            columns: z.object({ id: z.number(), status: z.string(), body: z.string().optional() }),
            key: 'id',
            update: 'doc.updated',
          }),
        ],
      }),
    );
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract);
    const changeSource = source(f, broker);
    await changeSource.start();
    // Incompressible and over 2 kB: stored out of line, and not sent again by an update that leaves it.
    await db.query(`INSERT INTO ${f.table} SELECT 1, 'draft', string_agg(md5(i::text), '') FROM generate_series(1, 200) i`);
    await db.query(`UPDATE ${f.table} SET status = 'final' WHERE id = 1`);
    await db.query(`ALTER TABLE ${f.table} REPLICA IDENTITY FULL`);
    await db.query(`UPDATE ${f.table} SET status = 'archived' WHERE id = 1`);
    await waitFor(() => received.length === 2, '2 events', 15_000);
    expect(received[0]?.data).toEqual({ id: 1, status: 'final' });
    expect((received[1]?.data as { body?: string } | undefined)?.body).toHaveLength(6400);
  });

  it('bounded memory under a burst: it stops reading the stream while the broker is behind', async () => {
    const f = await fixture();
    const memory = createMemoryBroker();
    const { broker } = gatedBroker(memory, 15);
    const received = await receiver(memory, f.contract);
    const maxPending = 200;
    const changeSource = source(f, broker, { maxPending, batchSize: 50 });
    await changeSource.start();
    const total = 6000;
    await db.query(`INSERT INTO ${f.table} (id, status) SELECT g, 'new' FROM generate_series(1, ${total / 2}) g`);
    for (let i = total / 2 + 1; i <= total; i += 500) {
      await db.query(`INSERT INTO ${f.table} (id, status) SELECT g, 'new' FROM generate_series($1::int, $1::int + 499) g`, [i]);
    }
    await waitFor(() => received.length === total, `${total} events`, 90_000);
    const stats = changeSource.stats();
    expect(stats.pauses).toBeGreaterThan(0);
    // Past the bound, at most what one socket read (64 KiB, about 60 bytes per change here) held is decoded.
    expect(stats.maxPendingSeen).toBeGreaterThanOrEqual(maxPending);
    expect(stats.maxPendingSeen).toBeLessThanOrEqual(maxPending + 1200);
    expect(new Set(received.map((r) => r.id)).size).toBe(total);
  });

  it('reports slot lag past the bound (lag() and the diagnostics channel), and when it is back under', async () => {
    const f = await fixture();
    const memory = createMemoryBroker();
    const { broker, state } = gatedBroker(memory);
    const received = await receiver(memory, f.contract);
    const reports: { exceeded: boolean; lagBytes: number; slot: string }[] = [];
    const onLag = (message: unknown) => reports.push(message as { exceeded: boolean; lagBytes: number; slot: string });
    subscribe('switchboard:changes:lag', onLag);
    cleanup.push(async () => unsubscribe('switchboard:changes:lag', onLag));
    const progress: { lagBytes: number; slot: string; source: string; confirmedLsn: string; currentLsn: string }[] = [];
    const onProgress = (message: unknown) => progress.push(message as (typeof progress)[number]);
    subscribe('switchboard:changes:progress', onProgress);
    cleanup.push(async () => unsubscribe('switchboard:changes:progress', onProgress));
    const changeSource = source(f, broker, { maxLagBytes: 64 * 1024, lagCheckIntervalMs: 100 });
    await changeSource.start();
    state.closed = true; // the broker takes nothing
    await db.query(`INSERT INTO ${f.table} (id, status) SELECT g, 'new' FROM generate_series(1, 5000) g`);
    await waitFor(() => reports.some((r) => r.exceeded && r.slot === f.slot), 'a lag report', 15_000);
    const lag = await changeSource.lag();
    expect(lag.exceeded).toBe(true);
    expect(lag.bytes).toBeGreaterThan(64 * 1024);
    // Every measurement is told to switchboard:changes:progress (what the metrics' slot-lag gauge reads).
    expect(progress.at(-1)).toEqual({
      source: f.contract.name,
      slot: f.slot,
      lagBytes: lag.bytes,
      confirmedLsn: lag.confirmedLsn,
      currentLsn: lag.currentLsn,
    });
    expect(lag.pending).toBeGreaterThan(0);
    expect(received).toHaveLength(0);
    state.closed = false;
    await waitFor(() => received.length === 5000, 'every change after the broker came back', 30_000);
    await waitFor(() => reports.at(-1)?.exceeded === false, 'the lag back under its bound', 15_000);
    expect((await changeSource.lag()).exceeded).toBe(false);
  });

  it('changes of tables or operations the contract does not publish are skipped, and the slot moves past them', async () => {
    const f = await fixture(undefined, (table) =>
      defineContract({ name: 'shop', changes: [changes(table, { columns: Order, key: 'id', insert: 'order.created' })] }),
    );
    const other = randomName('other').replaceAll('-', '_');
    await db.query(`CREATE TABLE ${other} (id int PRIMARY KEY)`);
    await db.query(`ALTER PUBLICATION "${f.publication}" ADD TABLE ${other}`);
    const broker = createMemoryBroker();
    const received = await receiver(broker, f.contract);
    const changeSource = source(f, broker);
    await changeSource.start();
    await db.query(`INSERT INTO ${other} VALUES (1), (2)`);
    await db.query(`INSERT INTO ${f.table} (id, status) VALUES (1, 'new')`);
    await db.query(`UPDATE ${f.table} SET status = 'paid'`);
    await db.query(`DELETE FROM ${f.table}`);
    await db.query(`INSERT INTO ${f.table} (id, status) VALUES (2, 'new')`);
    await waitFor(() => received.length === 2, '2 inserts', 15_000);
    await waitFor(() => changeSource.stats().skipped === 4, '4 skipped changes', 5_000);
    const current = (await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn ?? '0/0';
    await waitFor(() => parseLsn(changeSource.stats().confirmedLsn) > 0n, 'a confirmed position');
    expect(received.map((r) => r.subject)).toEqual(['1', '2']);
    expect(parseLsn(current)).toBeGreaterThanOrEqual(parseLsn(changeSource.stats().confirmedLsn));
  });
});
