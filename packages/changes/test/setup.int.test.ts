import { changes, defineContract, isSwitchboardError, type SwitchboardError } from '@switchboard/core';
import { createMemoryBroker } from '@switchboard/memory';
import { PrivatePostgresServer, randomName } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ChangeSetupProblem, checkPostgresChanges, createPostgresChangeSource } from '../src/index.js';

// Bad input at start, each a clear error naming the fix. Two private servers: one as PostgreSQL
// ships (wal_level = replica), one with wal_level = logical.
const replica = new PrivatePostgresServer();
const logical = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });
let db: pg.Client;

beforeAll(async () => {
  await Promise.all([replica.start(), logical.start()]);
  db = new pg.Client(logical.url);
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await Promise.all([replica.dispose(), logical.dispose()]);
});

const Order = z.object({ id: z.number(), status: z.string() });

function shop(table: string) {
  return defineContract({
    name: 'shop',
    changes: [changes(table, { columns: Order, key: 'id', insert: 'order.created', update: 'order.updated', delete: 'order.deleted' })],
  });
}

async function freshTable(definition = 'id int PRIMARY KEY, status text NOT NULL'): Promise<string> {
  const table = randomName('orders').replaceAll('-', '_');
  await db.query(`CREATE TABLE ${table} (${definition})`);
  return table;
}

const names = () => ({ slot: randomName('slot').replaceAll('-', '_'), publication: randomName('pub') });

function codes(problems: readonly ChangeSetupProblem[]): string[] {
  return problems.map((p) => p.code).sort();
}

/** start() must reject with SB_CHANGES_SETUP listing these problem codes, and its detail must carry each fix. */
async function expectStartRefused(
  options: Parameters<typeof createPostgresChangeSource>[0],
  expected: string[],
): Promise<SwitchboardError> {
  const source = createPostgresChangeSource(options);
  const error = await source.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  await source.close();
  expect(isSwitchboardError(error, 'SB_CHANGES_SETUP')).toBe(true);
  const setup = error as SwitchboardError;
  const problems = setup.extensions.problems as ChangeSetupProblem[];
  expect(codes(problems)).toEqual([...expected].sort());
  for (const problem of problems) expect(setup.detail).toContain(problem.fix);
  return setup;
}

describe('change source setup: what is missing, and the fix', () => {
  it('wal_level not logical', async () => {
    const client = new pg.Client(replica.url);
    await client.connect();
    await client.query('CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)');
    await client.end();
    const contract = shop('orders');
    const report = await checkPostgresChanges({ connection: replica.url, contract, ...names() });
    expect(report.ok).toBe(false);
    expect(report.walLevel).toBe('replica');
    const wal = report.problems.find((p) => p.code === 'wal-level');
    expect(wal?.message).toBe("wal_level is 'replica'; logical decoding needs 'logical'");
    expect(wal?.fix).toBe("ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL");
    // Even when asked to create things, nothing is created and start refuses.
    const setup = await expectStartRefused(
      { connection: replica.url, contract, broker: createMemoryBroker(), deadLetters: false, create: true, ...names() },
      ['wal-level', 'publication-missing', 'slot-missing'],
    );
    expect(setup.detail).toContain("ALTER SYSTEM SET wal_level = 'logical'");
  });

  it('a table that does not exist', async () => {
    const report = await checkPostgresChanges({ connection: logical.url, contract: shop('no_such_table'), ...names() });
    const problem = report.problems.find((p) => p.code === 'table-missing');
    expect(problem).toMatchObject({
      table: 'public.no_such_table',
      message: 'table public.no_such_table does not exist',
      creatable: false,
    });
    await expectStartRefused(
      {
        connection: logical.url,
        contract: shop('no_such_table'),
        broker: createMemoryBroker(),
        deadLetters: false,
        create: true,
        ...names(),
      },
      ['table-missing', 'publication-missing', 'slot-missing'],
    );
  });

  it('a column of the schema or of the key that does not exist', async () => {
    const table = await freshTable('id int PRIMARY KEY, state text');
    const contract = defineContract({
      name: 'shop',
      changes: [
        changes(table, {
          columns: z.object({ id: z.number(), status: z.string(), region: z.string() }),
          key: ['id', 'region'],
          insert: 'order.created',
        }),
      ],
    });
    const report = await checkPostgresChanges({ connection: logical.url, contract, ...names() });
    const missing = report.problems.filter((p) => p.code === 'column-missing');
    expect(missing.map((p) => p.column).sort()).toEqual(['region', 'status']);
    expect(missing.find((p) => p.column === 'region')?.message).toBe(
      `column region of the key does not exist in public.${table} (it has id, state)`,
    );
    expect(missing.find((p) => p.column === 'status')?.message).toContain('of the columns schema');
  });

  it('a missing publication and slot: reported, created when allowed, and the doctor itself changes nothing', async () => {
    const table = await freshTable();
    const contract = shop(table);
    const { slot, publication } = names();
    const report = await checkPostgresChanges({ connection: logical.url, contract, slot, publication });
    expect(codes(report.problems)).toEqual(['publication-missing', 'slot-missing']);
    expect(report.problems.find((p) => p.code === 'publication-missing')?.fix).toBe(
      `CREATE PUBLICATION "${publication}" FOR TABLE "public"."${table}" WITH (publish = 'insert, update, delete');`,
    );
    expect(report.problems.find((p) => p.code === 'slot-missing')?.fix).toBe(
      `SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput');`,
    );
    expect((await db.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount).toBe(0);
    expect((await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rowCount).toBe(0);

    await expectStartRefused({ connection: logical.url, contract, broker: createMemoryBroker(), deadLetters: false, slot, publication }, [
      'publication-missing',
      'slot-missing',
    ]);
    // Only the publication may be created: the slot is still reported.
    await expectStartRefused(
      {
        connection: logical.url,
        contract,
        broker: createMemoryBroker(),
        deadLetters: false,
        slot,
        publication,
        create: { publication: true },
      },
      ['slot-missing'],
    );
    expect(
      (await db.query('SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2', [publication, table])).rowCount,
    ).toBe(1);
    const source = createPostgresChangeSource({
      connection: logical.url,
      contract,
      broker: createMemoryBroker(),
      deadLetters: false,
      slot,
      publication,
      create: true,
    });
    await source.start();
    expect(source.report?.ok).toBe(true);
    expect((await db.query(`SELECT plugin FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows).toEqual([{ plugin: 'pgoutput' }]);
    expect((await checkPostgresChanges({ connection: logical.url, contract, slot, publication })).problems.map((p) => p.code)).toEqual([
      'slot-active',
    ]);
    // A second source on the same slot: refused, naming the other reader.
    const second = await expectStartRefused(
      { connection: logical.url, contract, broker: createMemoryBroker(), deadLetters: false, slot, publication },
      ['slot-active'],
    );
    expect(second.detail).toContain(`is in use by another connection`);
    await source.close();
    expect((await checkPostgresChanges({ connection: logical.url, contract, slot, publication })).ok).toBe(true);
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('a publication without the table or without an operation', async () => {
    const [table, other] = [await freshTable(), await freshTable()];
    const contract = shop(table);
    const { slot, publication } = names();
    await db.query(`CREATE PUBLICATION "${publication}" FOR TABLE ${other} WITH (publish = 'insert, update')`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const report = await checkPostgresChanges({ connection: logical.url, contract, slot, publication });
    expect(codes(report.problems)).toEqual(['publication-operation', 'publication-table-missing']);
    expect(report.problems.find((p) => p.code === 'publication-table-missing')?.fix).toBe(
      `ALTER PUBLICATION "${publication}" ADD TABLE "public"."${table}";`,
    );
    expect(report.problems.find((p) => p.code === 'publication-operation')?.fix).toBe(
      `ALTER PUBLICATION "${publication}" SET (publish = 'insert, update, delete');`,
    );
    // create adds the table, but does not change what an existing publication publishes.
    await expectStartRefused(
      { connection: logical.url, contract, broker: createMemoryBroker(), deadLetters: false, slot, publication, create: true },
      ['publication-operation'],
    );
    expect(
      (await db.query('SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2', [publication, table])).rowCount,
    ).toBe(1);
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('insufficient privileges: a role without REPLICATION', async () => {
    const table = await freshTable();
    const role = randomName('app').replaceAll('-', '_');
    await db.query(`CREATE ROLE ${role} LOGIN`);
    const connection = logical.urlFor({ user: role });
    const contract = shop(table);
    const report = await checkPostgresChanges({ connection, contract, ...names() });
    const privileges = report.problems.find((p) => p.code === 'privileges');
    expect(privileges?.message).toBe(`role ${role} may not stream changes: it lacks the REPLICATION attribute`);
    expect(privileges?.fix).toBe(`ALTER ROLE "${role}" WITH REPLICATION; (as a superuser)`);
    // It neither owns the table nor may create a slot: nothing is creatable.
    expect(report.problems.find((p) => p.code === 'publication-missing')).toMatchObject({ creatable: false });
    expect(report.problems.find((p) => p.code === 'slot-missing')).toMatchObject({ creatable: false });
    await expectStartRefused({ connection, contract, broker: createMemoryBroker(), deadLetters: false, create: true, ...names() }, [
      'privileges',
      'publication-missing',
      'slot-missing',
    ]);
  });

  it('updates and deletes of a table without replica identity; deletes whose key is not in it', async () => {
    const noKey = await freshTable('id int NOT NULL, status text NOT NULL');
    const report = await checkPostgresChanges({ connection: logical.url, contract: shop(noKey), ...names() });
    const identity = report.problems.find((p) => p.code === 'replica-identity');
    expect(identity?.message).toContain('has no replica identity (no primary key)');
    expect(identity?.fix).toContain(`ALTER TABLE "public"."${noKey}" REPLICA IDENTITY FULL;`);
    // Inserts only: no replica identity needed.
    const insertsOnly = defineContract({ name: 'shop', changes: [changes(noKey, { columns: Order, key: 'id', insert: 'order.created' })] });
    expect(codes((await checkPostgresChanges({ connection: logical.url, contract: insertsOnly, ...names() })).problems)).toEqual([
      'publication-missing',
      'slot-missing',
    ]);

    const otherKey = await freshTable('uid int PRIMARY KEY, id int NOT NULL, status text NOT NULL');
    const keyReport = await checkPostgresChanges({ connection: logical.url, contract: shop(otherKey), ...names() });
    expect(keyReport.problems.find((p) => p.code === 'key-not-identity')).toMatchObject({
      column: 'id',
      fix: `ALTER TABLE "public"."${otherKey}" REPLICA IDENTITY FULL; or declare key: ['uid']`,
    });
    await db.query(`ALTER TABLE ${otherKey} REPLICA IDENTITY FULL`);
    expect(
      (await checkPostgresChanges({ connection: logical.url, contract: shop(otherKey), ...names() })).problems.some(
        (p) => p.code === 'key-not-identity',
      ),
    ).toBe(false);
  });

  it('a slot of another plugin', async () => {
    const table = await freshTable();
    const { slot, publication } = names();
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    const report = await checkPostgresChanges({ connection: logical.url, contract: shop(table), slot, publication });
    expect(report.problems.find((p) => p.code === 'slot-mismatch')?.message).toBe(
      `replication slot ${slot} is a logical slot of plugin test_decoding in database postgres; a change source needs a logical pgoutput slot of postgres`,
    );
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('options checked when the source is made', () => {
    const base = {
      connection: logical.url,
      contract: shop('orders'),
      broker: createMemoryBroker(),
      deadLetters: false as const,
      ...names(),
    };
    expect(() => createPostgresChangeSource({ ...base, slot: '' })).toThrow(/`slot` is required/);
    expect(() => createPostgresChangeSource({ ...base, maxPending: 0 })).toThrow(/maxPending must be a positive integer/);
    expect(() => createPostgresChangeSource({ ...base, deadLetters: undefined as never })).toThrow(/`deadLetters` is required/);
  });
});
