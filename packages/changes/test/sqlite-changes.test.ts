import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent, CloudEventsBinding, OutgoingMessage, StandardSchemaV1 } from '@switchboard/core';
import {
  changes,
  cloudEventsBindings,
  decodeCloudEvent,
  defineContract,
  isSwitchboardError,
  newMessageId,
  withMode,
} from '@switchboard/core';
import { createMemoryBlobStore, createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { createSqliteOutbox, type SqliteOutbox } from '@switchboard/sqlite';
import { PublishRecordingBroker, waitFor } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { HTTP, type CloudEvent as SdkCloudEvent } from 'cloudevents';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checkSqliteChanges, createSqliteChangeRelay, installSqliteChangeTriggers, type SqliteChangeProblem } from '../src/index.js';

const Customer = z.object({
  id: z.number().int(),
  name: z.string(),
  balance: z.number(),
  tier: z.enum(['free', 'pro']),
  note: z.string().nullable(),
});

const shop = defineContract({
  name: 'shop',
  changes: [
    changes('customers', {
      columns: Customer,
      key: 'id',
      insert: 'customer.created',
      update: 'customer.updated',
      delete: 'customer.deleted',
    }),
  ],
});

const CUSTOMERS = `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL NOT NULL DEFAULT 0,
  tier TEXT NOT NULL DEFAULT 'free', note TEXT, secret TEXT)`;

/** A row schema that does not describe its properties (no JSON Schema): the triggers capture every column. */
const opaque: StandardSchemaV1<Record<string, unknown>> = {
  '~standard': { version: 1, vendor: 'test', validate: (value: unknown) => ({ value: value as Record<string, unknown> }) },
};

const dirs: string[] = [];
const handles: { close(): unknown }[] = [];

afterEach(async () => {
  for (const handle of handles.splice(0).reverse()) await handle.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A database file with the customers table and the outbox on the application's own handle. */
function openShop(schema = CUSTOMERS, file = 'shop.db'): { db: Database.Database; outbox: SqliteOutbox } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-changes-'));
  dirs.push(dir);
  const db = new Database(join(dir, file));
  db.pragma('journal_mode = WAL');
  db.exec(schema);
  const outbox = createSqliteOutbox({ database: db });
  handles.push(db, outbox);
  return { db, outbox };
}

function recordingBroker(binding: CloudEventsBinding = cloudEventsBindings.plain): PublishRecordingBroker {
  const broker = new PublishRecordingBroker();
  (broker as { binding: CloudEventsBinding }).binding = binding;
  return broker;
}

function decode(message: OutgoingMessage, binding: CloudEventsBinding): CloudEvent {
  return decodeCloudEvent(message.headers, message.body, binding);
}

function dataOf(event: CloudEvent): unknown {
  const data = event.data;
  return data instanceof Uint8Array ? JSON.parse(Buffer.from(data).toString('utf8')) : data;
}

/** Runs the relay until the outbox is empty; answers what it published. */
async function drain(relay: { runOnce(): Promise<number> }): Promise<void> {
  while ((await relay.runOnce()) > 0);
}

describe('SQLite change triggers: the events', () => {
  it('an insert, an update and a delete in one transaction become three typed events, in order, iff it commits', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const deadLetters = createMemoryDeadLetterStore();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters });

    db.transaction(() => {
      db.prepare("INSERT INTO customers (id, name, balance, tier, note, secret) VALUES (42, 'Ada', 10.5, 'free', NULL, 's3cret')").run();
      db.prepare("UPDATE customers SET tier = 'pro', balance = 0.1 + 0.2 WHERE id = 42").run();
      db.prepare('DELETE FROM customers WHERE id = 42').run();
    })();
    // Rolled back: nothing of it reaches the outbox.
    expect(() =>
      db.transaction(() => {
        db.prepare("INSERT INTO customers (id, name) VALUES (7, 'Grace')").run();
        db.prepare("UPDATE customers SET name = 'Grace H.' WHERE id = 7").run();
        throw new Error('the application changes its mind');
      })(),
    ).toThrow('changes its mind');
    expect(await outbox.pendingCount()).toBe(3);

    await drain(relay);
    const published = broker.published;
    expect(published).toHaveLength(3);
    const events = published.map((m) => decode(m, broker.binding));
    expect(events.map((e) => e.type)).toEqual(['shop.customer.created', 'shop.customer.updated', 'shop.customer.deleted']);
    for (const [i, event] of events.entries()) {
      expect(event.source).toBe('/sqlite/shop/customers');
      expect(event.subject).toBe('42');
      expect(event.datacontenttype).toBe('application/json');
      expect(published[i]?.topic).toBe('shop.events');
      expect(published[i]?.key).toBe('customers/42');
      expect(published[i]?.id).toBe(event.id);
      expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      // Nothing of the change row's own headers travels.
      expect(Object.keys(published[i]?.headers ?? {}).filter((h) => h.startsWith('x-sb-change'))).toEqual([]);
    }
    expect(new Set(events.map((e) => e.id)).size).toBe(3);
    // Only the schema's columns: `secret` stays in the database. 0.1 + 0.2 arrives as the stored double.
    expect(dataOf(events[0] as CloudEvent)).toEqual({ id: 42, name: 'Ada', balance: 10.5, tier: 'free', note: null });
    expect(dataOf(events[1] as CloudEvent)).toEqual({ id: 42, name: 'Ada', balance: 0.1 + 0.2, tier: 'pro', note: null });
    expect(dataOf(events[2] as CloudEvent)).toEqual({ id: 42 });
    expect(await outbox.pendingCount()).toBe(0);
    expect(relay.stats()).toEqual({ changes: 3, deadLettered: 0, dropped: 0 });
  });

  it('a receiving service gets the rows typed through `on`, with the row key as subject', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = createMemoryBroker();
    handles.push(broker);
    const receiver = createMessaging({ broker, service: 'crm', receipts: createMemoryReceiptStore(), deadLetters: false });
    const seen: { name: string; subject: string | undefined; source: string; row: unknown }[] = [];
    receiver.on(shop, 'customer.*', (row, context) => {
      seen.push({ name: context.type, subject: context.subject, source: context.source, row });
    });
    await receiver.start();
    handles.push(receiver);
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters: false, pollIntervalMs: 10 });
    relay.start();
    handles.push({ close: () => relay.stop() });

    db.prepare("INSERT INTO customers (id, name, tier) VALUES (1, 'Ada', 'pro')").run();
    db.prepare('DELETE FROM customers WHERE id = 1').run();
    await waitFor(() => seen.length === 2, 'both changes received');
    expect(seen).toEqual([
      {
        name: 'shop.customer.created',
        subject: '1',
        source: '/sqlite/shop/customers',
        row: { id: 1, name: 'Ada', balance: 0, tier: 'pro', note: null },
      },
      { name: 'shop.customer.deleted', subject: '1', source: '/sqlite/shop/customers', row: { id: 1 } },
    ]);
  });

  it('the events are encoded for the binding of the broker the relay publishes to, and read by the official CloudEvents SDK', async () => {
    for (const mode of ['binary', 'structured'] as const) {
      const { db, outbox } = openShop();
      installSqliteChangeTriggers(db, shop);
      const binding = withMode(cloudEventsBindings.http, mode);
      const broker = recordingBroker(binding);
      const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters: false });
      db.prepare("INSERT INTO customers (id, name, note) VALUES (5, 'Émilie', 'says \"hi\"')").run();
      await drain(relay);
      const [message] = broker.published;
      if (message === undefined) throw new Error('nothing published');
      if (mode === 'structured') expect(message.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
      else expect(message.headers['ce-id']).toBe(message.id);
      const sdk = HTTP.toEvent({ headers: message.headers, body: Buffer.from(message.body).toString('utf8') }) as SdkCloudEvent<unknown>;
      expect(sdk.id).toBe(message.id);
      expect(sdk.type).toBe('shop.customer.created');
      expect(sdk.source).toBe('/sqlite/shop/customers');
      expect(sdk.subject).toBe('5');
      expect(sdk.specversion).toBe('1.0');
      expect(sdk.data).toEqual({ id: 5, name: 'Émilie', balance: 0, tier: 'free', note: 'says "hi"' });
    }
  });

  it('values keep their storage class: big integers as strings, doubles exactly, blobs as base64, text verbatim, infinities named', async () => {
    const schema = 'CREATE TABLE things (k TEXT PRIMARY KEY, i INTEGER, big INTEGER, r REAL, inf REAL, b BLOB, t TEXT, n TEXT)';
    const { db, outbox } = openShop(schema);
    // A schema that does not describe its properties: every column is captured.
    const things = defineContract({ name: 'lab', changes: [changes('things', { columns: opaque, key: 'k', insert: 'thing.added' })] });
    installSqliteChangeTriggers(db, things);
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: things, deadLetters: false });
    db.prepare('INSERT INTO things VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      'a/b ✓',
      -7,
      9_007_199_254_740_993n,
      1 / 3,
      Number.POSITIVE_INFINITY,
      Buffer.from([0, 255, 16]),
      'line\nbreak, "quotes", \\ and \u{1F600}',
      null,
    );
    await drain(relay);
    const event = decode(broker.published[0] as OutgoingMessage, broker.binding);
    expect(event.subject).toBe('a/b ✓');
    expect(dataOf(event)).toEqual({
      k: 'a/b ✓',
      i: -7,
      big: '9007199254740993',
      r: 1 / 3,
      inf: 'Infinity',
      b: Buffer.from([0, 255, 16]).toString('base64'),
      t: 'line\nbreak, "quotes", \\ and \u{1F600}',
      n: null,
    });
  });

  it('a table wider than one json_object call (450 columns, NULLs included) arrives whole', async () => {
    const names = Array.from({ length: 450 }, (_, i) => `c${i}`);
    const { db, outbox } = openShop(`CREATE TABLE wide (id INTEGER PRIMARY KEY, ${names.map((n) => `${n} INTEGER`).join(', ')})`);
    const wide = defineContract({ name: 'wide', changes: [changes('wide', { columns: opaque, key: 'id', insert: 'row.added' })] });
    installSqliteChangeTriggers(db, wide);
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: wide, deadLetters: false });
    const values = names.map((_, i) => (i % 7 === 3 ? null : i));
    db.prepare(`INSERT INTO wide VALUES (1, ${names.map(() => '?').join(', ')})`).run(...values);
    await drain(relay);
    const expected: Record<string, unknown> = { id: 1 };
    names.forEach((name, i) => {
      expected[name] = values[i];
    });
    expect(dataOf(decode(broker.published[0] as OutgoingMessage, broker.binding))).toEqual(expected);
  });

  it('a composite key: subject of percent-encoded parts, the delete carries the key columns only', async () => {
    const { db, outbox } = openShop('CREATE TABLE stock (region TEXT, sku TEXT, qty INTEGER, PRIMARY KEY (region, sku))');
    const Stock = z.object({ region: z.string(), sku: z.string(), qty: z.number().int() });
    const inventory = defineContract({
      name: 'inventory',
      changes: [changes('stock', { columns: Stock, key: ['region', 'sku'], update: 'stock.changed', delete: 'stock.removed' })],
    });
    installSqliteChangeTriggers(db, inventory);
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: inventory, deadLetters: false });
    db.prepare("INSERT INTO stock VALUES ('eu/west', 'a b', 3)").run(); // inserts are not declared: no trigger
    db.prepare("UPDATE stock SET qty = 2 WHERE sku = 'a b'").run();
    db.prepare("DELETE FROM stock WHERE sku = 'a b'").run();
    await drain(relay);
    const events = broker.published.map((m) => decode(m, broker.binding));
    expect(events.map((e) => [e.type, e.subject, dataOf(e)])).toEqual([
      ['inventory.stock.changed', 'eu%2Fwest/a%20b', { region: 'eu/west', sku: 'a b', qty: 2 }],
      ['inventory.stock.removed', 'eu%2Fwest/a%20b', { region: 'eu/west', sku: 'a b' }],
    ]);
    expect(broker.published[1]?.key).toBe('stock/eu%2Fwest/a%20b');
  });

  it("the application's own outbox messages and the changes go out as one ordered stream, per key in commit order", async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters: false, batchSize: 7 });
    const own: OutgoingMessage = {
      id: newMessageId(),
      topic: 'shop.audit',
      headers: { 'ce-type': 'audit' },
      body: Buffer.from('own'),
      key: 'k',
    };
    const expected: string[] = [];
    for (let round = 0; round < 10; round++) {
      db.transaction(() => {
        for (let id = 1; id <= 3; id++) {
          if (round === 0) db.prepare("INSERT INTO customers (id, name) VALUES (?, 'n0')").run(id);
          else db.prepare('UPDATE customers SET name = ? WHERE id = ?').run(`n${round}`, id);
          expected.push(`${id}:n${round}`);
        }
        if (round === 4) {
          outbox.enqueue([own]);
          expected.push('own');
        }
      })();
    }
    await drain(relay);
    const seen = broker.published.map((m) => {
      if (m.topic === 'shop.audit') return 'own';
      const event = decode(m, broker.binding);
      return `${event.subject}:${(dataOf(event) as { name: string }).name}`;
    });
    expect(seen).toEqual(expected);
    // The application's message exactly as it enqueued it.
    const mine = broker.published.find((m) => m.topic === 'shop.audit');
    expect(mine).toEqual({ ...own, body: new Uint8Array(Buffer.from('own')) });
    expect(broker.batches.length).toBeGreaterThan(1);
  });

  it('a republished change keeps its MessageId: a failed publish is built again from the row, with the same id', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters: false });
    db.prepare("INSERT INTO customers (id, name) VALUES (1, 'Ada')").run();
    const stored = db.prepare('SELECT id FROM sb_outbox').pluck().get();
    broker.failNext(1);
    await expect(relay.runOnce()).rejects.toSatisfy((error) => isSwitchboardError(error, 'SB_BROKER_UNAVAILABLE'));
    await drain(relay);
    expect(broker.published.map((m) => m.id)).toEqual([stored]);
    expect(relay.stats().changes).toBe(2);
  });

  it('large rows go by claim check', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const blobs = createMemoryBlobStore();
    const relay = createSqliteChangeRelay({
      outbox,
      broker,
      contracts: shop,
      deadLetters: false,
      blobs,
      claimCheck: { thresholdBytes: 1024 },
    });
    db.prepare('INSERT INTO customers (id, name) VALUES (1, ?)').run('x'.repeat(4096));
    await drain(relay);
    const event = decode(broker.published[0] as OutgoingMessage, broker.binding);
    expect(event.data).toBeUndefined();
    const stored = await blobs.get(blobs.resolve(String(event.extensions?.dataref)));
    const chunks: Buffer[] = [];
    for await (const chunk of stored.body) chunks.push(chunk as Buffer);
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toMatchObject({ id: 1, name: 'x'.repeat(4096) });
  });
});

describe('SQLite change triggers: bad rows', () => {
  it('a row that fails its schema is dead-lettered with the row key and the reason; the stream goes on', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const deadLetters = createMemoryDeadLetterStore();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters, batchSize: 2 });
    db.prepare("INSERT INTO customers (id, name) VALUES (1, 'Ada')").run();
    db.prepare("INSERT INTO customers (id, name, tier) VALUES (2, 'Bob', 'gold')").run(); // not in the enum
    db.prepare("INSERT INTO customers (id, name, tier) VALUES (3, 'Eve', 'platinum')").run();
    db.prepare("INSERT INTO customers (id, name, tier) VALUES (4, 'Cy', 'pro')").run();
    const ids = db.prepare('SELECT id FROM sb_outbox ORDER BY seq').pluck().all() as string[];
    await drain(relay);

    expect(broker.published.map((m) => decode(m, broker.binding).subject)).toEqual(['1', '4']);
    const page = await deadLetters.list();
    expect(page.items).toHaveLength(2);
    const letter = await deadLetters.get((page.items.find((item) => item.messageId === ids[1]) ?? page.items[0])?.id ?? '');
    expect(letter).toMatchObject({ messageId: ids[1], source: '/sqlite/shop/customers', group: 'changes.sqlite', reason: 'invalid' });
    expect(letter?.detail).toContain('insert of customers row 2 does not match its schema');
    expect(letter?.detail).toContain('/tier');
    expect(letter?.key).toBe('customers/2');
    // The dead letter is the event that would have been sent: it can be replayed once fixed.
    const event = decodeCloudEvent(letter?.headers ?? {}, letter?.body ?? new Uint8Array(), broker.binding);
    expect(event).toMatchObject({ id: ids[1], type: 'shop.customer.created', subject: '2' });
    expect(dataOf(event)).toMatchObject({ id: 2, tier: 'gold' });
    expect(relay.stats()).toEqual({ changes: 2, deadLettered: 2, dropped: 0 });
    expect(await outbox.pendingCount()).toBe(0);
  });

  it('a NULL key is dead-lettered as such', async () => {
    const { db, outbox } = openShop('CREATE TABLE notes (code TEXT, body TEXT)');
    const Note = z.object({ code: z.string().nullable(), body: z.string() });
    const notes = defineContract({ name: 'notes', changes: [changes('notes', { columns: Note, key: 'code', insert: 'note.added' })] });
    installSqliteChangeTriggers(db, notes);
    const deadLetters = createMemoryDeadLetterStore();
    const broker = recordingBroker();
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: notes, deadLetters });
    db.prepare("INSERT INTO notes VALUES (NULL, 'orphan')").run();
    await drain(relay);
    expect(broker.published).toEqual([]);
    const [item] = (await deadLetters.list()).items;
    expect((await deadLetters.get(item?.id ?? ''))?.detail).toBe('insert of notes row (no key) has no value for key column code');
  });

  it('the dead-letter store down: nothing is lost, the row waits in the outbox and goes once the store is back', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const broker = recordingBroker();
    const store = createMemoryDeadLetterStore();
    let down = true;
    const deadLetters = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'add' && down) return () => Promise.reject(new Error('dead-letter store down'));
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const relay = createSqliteChangeRelay({ outbox, broker, contracts: shop, deadLetters });
    db.prepare("INSERT INTO customers (id, name) VALUES (1, 'Ada')").run();
    db.prepare("INSERT INTO customers (id, name, tier) VALUES (2, 'Bob', 'gold')").run();
    db.prepare("INSERT INTO customers (id, name) VALUES (3, 'Cy')").run();
    // The entry before the failing one goes; the failing one and what follows wait, in order.
    expect(await relay.runOnce()).toBe(1);
    await expect(relay.runOnce()).rejects.toThrow('dead-letter store down');
    expect(await outbox.pendingCount()).toBe(2);
    down = false;
    await drain(relay);
    expect(broker.published.map((m) => decode(m, broker.binding).subject)).toEqual(['1', '3']);
    expect((await store.list()).items).toHaveLength(1);
  });

  it('a change of a contract the relay was not given stops the stream (nothing dropped) and says which contract to add', async () => {
    const { db, outbox } = openShop();
    installSqliteChangeTriggers(db, shop);
    const errors: unknown[] = [];
    const other = defineContract({ name: 'other' });
    const relay = createSqliteChangeRelay({
      outbox,
      broker: recordingBroker(),
      contracts: other,
      deadLetters: false,
      onError: (e) => errors.push(e),
    });
    db.prepare("INSERT INTO customers (id, name) VALUES (1, 'Ada')").run();
    await expect(relay.runOnce()).rejects.toThrow('change of contract shop, which this relay was not given');
    expect(await outbox.pendingCount()).toBe(1);
  });
});

describe('SQLite change triggers: setup', () => {
  const problemCodes = (error: unknown) =>
    ((error as { extensions?: { problems?: SqliteChangeProblem[] } }).extensions?.problems ?? []).map((p) => p.code);

  it('a table that does not exist: SB_CHANGES_SETUP naming the table and the fix; nothing is installed', () => {
    const { db } = openShop();
    const missing = defineContract({
      name: 'shop',
      changes: [
        changes('customers', { columns: Customer, key: 'id', insert: 'customer.created' }),
        changes('invoices', { columns: z.object({ id: z.number() }), key: 'id', insert: 'invoice.created' }),
      ],
    });
    let caught: unknown;
    try {
      installSqliteChangeTriggers(db, missing);
    } catch (error) {
      caught = error;
    }
    expect(isSwitchboardError(caught, 'SB_CHANGES_SETUP')).toBe(true);
    expect((caught as Error).message).toContain('table invoices does not exist');
    expect((caught as { detail?: string }).detail).toContain('CREATE TABLE "invoices"');
    expect(problemCodes(caught)).toEqual(['table-missing']);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").pluck().get()).toBe(0);
  });

  it('a column that does not exist (in the schema or the key): each named, with the fix', () => {
    const { db } = openShop('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
    let caught: unknown;
    try {
      installSqliteChangeTriggers(
        db,
        defineContract({ name: 'shop', changes: [changes('customers', { columns: Customer, key: 'id', insert: 'customer.created' })] }),
      );
    } catch (error) {
      caught = error;
    }
    expect(problemCodes(caught)).toEqual(['column-missing', 'column-missing', 'column-missing']);
    const detail = (caught as { detail: string }).detail;
    expect(detail).toContain('table customers has no column balance (in the columns schema)');
    expect(detail).toContain('ALTER TABLE "customers" ADD COLUMN "tier"');

    const keyed = defineContract({
      name: 'shop',
      changes: [
        changes('customers', { columns: z.object({ name: z.string(), code: z.string() }), key: 'code', insert: 'customer.created' }),
      ],
    });
    expect(() => installSqliteChangeTriggers(db, keyed)).toThrow('table customers has no column code (a key column)');
  });

  it('no outbox table, a view, a schema other than main: clear errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-changes-'));
    dirs.push(dir);
    const db = new Database(join(dir, 'bare.sqlite3'));
    handles.push(db);
    db.exec(`${CUSTOMERS}; CREATE VIEW rich AS SELECT * FROM customers WHERE balance > 100`);
    expect(() => installSqliteChangeTriggers(db, shop)).toThrow(
      'open the outbox on this database first: createSqliteOutbox({ database: db })',
    );
    createSqliteOutbox({ database: db });
    const view = defineContract({ name: 'shop', changes: [changes('rich', { columns: Customer, key: 'id', insert: 'rich.added' })] });
    expect(() => installSqliteChangeTriggers(db, view)).toThrow('rich is a view: SQLite has no AFTER triggers on it');
    const schema = defineContract({
      name: 'shop',
      changes: [changes('sales.customers', { columns: Customer, key: 'id', insert: 'c.added' })],
    });
    expect(() => installSqliteChangeTriggers(db, schema)).toThrow("declare the table without a schema: changes('customers', ...)");
    // `main.` is this database: accepted. The default name of the source is the file's, without its extension.
    const main = defineContract({
      name: 'shop',
      changes: [changes('main.customers', { columns: Customer, key: 'id', insert: 'c.added' })],
    });
    expect(checkSqliteChanges(db, main).database).toBe('bare');
    expect(() => checkSqliteChanges(new Database(':memory:'), shop)).toThrow('pass `database`');
  });

  it('installing twice changes nothing the second time, and each change is written once', async () => {
    const { db, outbox } = openShop();
    const first = installSqliteChangeTriggers(db, shop);
    expect(first.created).toEqual([
      'sb_changes_shop_customers_insert',
      'sb_changes_shop_customers_update',
      'sb_changes_shop_customers_delete',
    ]);
    const sql = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all();
    const second = installSqliteChangeTriggers(db, shop);
    expect(second).toEqual({ triggers: first.triggers, created: [], dropped: [] });
    expect(db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all()).toEqual(sql);
    db.prepare("INSERT INTO customers (id, name) VALUES (1, 'Ada')").run();
    expect(await outbox.pendingCount()).toBe(1);
  });

  it("inside the application's transaction the install joins it: rolled back with it, committed with it", () => {
    const { db } = openShop();
    expect(() =>
      db.transaction(() => {
        installSqliteChangeTriggers(db, shop);
        throw new Error('migration failed');
      })(),
    ).toThrow('migration failed');
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").pluck().get()).toBe(0);
    db.transaction(() => {
      installSqliteChangeTriggers(db, shop);
    })();
    expect(checkSqliteChanges(db, shop).ok).toBe(true);
  });

  it('the doctor: missing triggers, outdated ones after a column is added, extra ones after an operation is dropped; install fixes each', () => {
    const { db } = openShop();
    const before = checkSqliteChanges(db, shop);
    expect(before.ok).toBe(false);
    expect(before.problems.map((p) => [p.code, p.creatable])).toEqual([
      ['trigger-missing', true],
      ['trigger-missing', true],
      ['trigger-missing', true],
    ]);
    installSqliteChangeTriggers(db, shop);
    expect(checkSqliteChanges(db, shop)).toEqual({
      ok: true,
      problems: [],
      database: 'shop',
      triggers: ['sb_changes_shop_customers_insert', 'sb_changes_shop_customers_update', 'sb_changes_shop_customers_delete'],
    });

    // A schema that does not describe its properties captures every column: a new column makes its triggers outdated.
    const everything = defineContract({
      name: 'all',
      changes: [changes('customers', { columns: opaque, key: 'id', insert: 'c.added', update: 'c.changed' })],
    });
    installSqliteChangeTriggers(db, everything);
    db.exec('ALTER TABLE customers ADD COLUMN email TEXT');
    expect(checkSqliteChanges(db, everything).problems.map((p) => p.code)).toEqual(['trigger-outdated', 'trigger-outdated']);
    expect(installSqliteChangeTriggers(db, everything).created).toEqual([
      'sb_changes_all_customers_insert',
      'sb_changes_all_customers_update',
    ]);
    expect(checkSqliteChanges(db, everything).ok).toBe(true);

    // The contract stops publishing updates: its update trigger is extra, and install drops it.
    const fewer = defineContract({ name: 'all', changes: [changes('customers', { columns: opaque, key: 'id', insert: 'c.added' })] });
    expect(checkSqliteChanges(db, fewer).problems.map((p) => [p.code, p.trigger])).toEqual([
      ['trigger-extra', 'sb_changes_all_customers_update'],
    ]);
    expect(installSqliteChangeTriggers(db, fewer)).toMatchObject({ created: [], dropped: ['sb_changes_all_customers_update'] });
    // The other contract's triggers on the same table are its own business.
    expect(checkSqliteChanges(db, shop).ok).toBe(true);
  });

  it('the triggers join the outbox of another table prefix, and the relay of that outbox publishes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-changes-'));
    dirs.push(dir);
    const db = new Database(join(dir, 'prefixed.db'));
    handles.push(db);
    db.exec(CUSTOMERS);
    const outbox = createSqliteOutbox({ database: db, tablePrefix: 'app_' });
    handles.push(outbox);
    expect(() => installSqliteChangeTriggers(db, shop)).toThrow('createSqliteOutbox({ database: db })');
    installSqliteChangeTriggers(db, shop, { tablePrefix: 'app_', database: 'crm' });
    const broker = recordingBroker();
    db.prepare("INSERT INTO customers (id, name) VALUES (9, 'Ada')").run();
    await drain(createSqliteChangeRelay({ outbox, broker, contracts: [defineContract({ name: 'x' }), shop], deadLetters: false }));
    expect(decode(broker.published[0] as OutgoingMessage, broker.binding).source).toBe('/sqlite/crm/customers');
  });
});
