import { jetstreamManager } from '@nats-io/jetstream';
import { createPostgresChangeSource, createSqliteChangeRelay, installSqliteChangeTriggers } from '@switchboard/changes';
import { changes, createOutboxRelay, defineContract, type OutboxMessage } from '@switchboard/core';
import { createMemoryBroker, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, eventsTopic } from '@switchboard/messaging';
import { createNatsBroker } from '@switchboard/nats';
import { createSqliteOutbox } from '@switchboard/sqlite';
import { PrivatePostgresServer } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import pg from 'pg';
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { z } from 'zod';
import { describeError, randomName, reachable } from '../lib/broker-load.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';
import { benchDatabasePath, removeDatabase } from '../lib/sqlite-files.js';
import { clockMs } from '../lib/stamp.js';
import { round, Samples } from '../lib/stats.js';

/**
 * Change events: committed PostgreSQL row changes published as CloudEvents by the change source.
 *
 * 1. A burst of 100,000 single-row inserts (100,000 transactions), committed before anything reads
 *    them, is read from slots created at the same position: by pg-logical-replication (the raw
 *    client, decoding only: no publishing, no acknowledgements) and by the change source publishing
 *    to the memory broker, alternately, two rounds each (the figure is their mean); then by the
 *    change source publishing to NATS JetStream (when reachable). Every publish of the source is
 *    confirmed before the slot moves. Rate = changes over the time from starting the stream to the last change decoded
 *    (raw) or confirmed by the broker (source). Target: the source ≥ 0.7× the raw client.
 * 2. Commit → handler latency at 500 changes/s: a writer commits one row every 2 ms; a receiver
 *    (messaging with an inbox) handles each event; latency = handler start − the writer's commit ack.
 *
 * 3. SQLite: the same burst written to a SQLite file three ways — plain inserts (no event), each insert
 *    with its event built by `prepareEmit` and `outbox.enqueue`d in the same transaction, and plain
 *    inserts into a table with the change triggers — then relayed to the memory broker: the bare
 *    outbox relay (messages built by the application) next to the change relay (change rows turned
 *    into events at relay time), alternately, two rounds each. Rate = rows over the time until the
 *    outbox is drained (every batch confirmed by the broker and marked sent).
 *
 * The PostgreSQL server is private (wal_level = logical), started for the run on a free port.
 */
export const changeEvents: Scenario = {
  name: 'change-events',
  description:
    'Row changes → CloudEvents: 100,000-insert burst, PostgreSQL change source vs raw pg-logical-replication decoding; commit→handler at 500 changes/s; SQLite change triggers + relay vs the bare outbox relay',
  async run(ctx) {
    await sqliteBurst(ctx);
    const server = new PrivatePostgresServer({ settings: { wal_level: 'logical', max_wal_size: '4GB', checkpoint_timeout: '30min' } });
    try {
      await server.start();
    } catch (error) {
      ctx.record({
        scenario: 'change-events',
        subject: 'postgres (private)',
        load: '-',
        metrics: { status: `could not start: ${describeError(error)}` },
      });
      return;
    }
    const db = new pg.Client(server.url);
    await db.connect();
    try {
      await burst(ctx, server, db);
      await steady(ctx, server, db);
    } finally {
      await db.end();
      await server.dispose();
    }
  },
};

const Row = z.object({ id: z.number().int(), name: z.string(), amount: z.number().int(), at: z.string() });

function contractFor(table: string) {
  return defineContract({ name: 'bench-changes', changes: [changes(table, { columns: Row, key: 'id', insert: 'row.created' })] });
}

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

async function burst(ctx: ScenarioContext, server: PrivatePostgresServer, db: pg.Client): Promise<void> {
  const total = Math.round(100_000 * ctx.scale);
  const natsUp = await reachable(NATS_URL, 4222);
  await db.query('CREATE TABLE burst (id int PRIMARY KEY, name text NOT NULL, amount int NOT NULL, at timestamptz NOT NULL DEFAULT now())');
  await db.query('CREATE PUBLICATION burst_pub FOR TABLE burst');
  // Raw client and change source read alternately, each from its own slot: round 1, then round 2.
  const rounds = ctx.scale < 1 ? 1 : 2;
  const slots = Array.from({ length: rounds }, (_, r) => [`burst_raw_${r}`, `burst_memory_${r}`]).flat();
  if (natsUp) slots.push('burst_nats');
  for (const slot of slots) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);

  // The burst: single-row transactions from 4 connections (synchronous_commit off only to write it faster; the WAL is the same).
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async (_, worker) => {
      const client = new pg.Client(server.url);
      await client.connect();
      await client.query('SET synchronous_commit = off');
      for (let id = worker + 1; id <= total; id += 4) {
        await client.query('INSERT INTO burst (id, name, amount) VALUES ($1, $2, $3)', [id, `customer ${id}`, id % 1000]);
      }
      await client.end();
    }),
  );
  ctx.log(`${total} single-row inserts committed in ${round((performance.now() - started) / 1000, 1)} s`);

  const raws: Run[] = [];
  const memories: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    raws.push(await rawDecode(server.url, `burst_raw_${r}`, total));
    memories.push(await sourceRun(server.url, `burst_memory_${r}`, total, createMemoryBroker()));
    ctx.log(`round ${r + 1}: raw ${round(raws[r]?.rate ?? 0, 0)}/s, change source ${round(memories[r]?.rate ?? 0, 0)}/s`);
  }
  const raw = mean(raws);
  const memory = mean(memories);
  const perRound = (runs: Run[]) => runs.map((run) => round(run.rate, 0)).join(' / ');
  ctx.record({
    scenario: 'change-events',
    subject: 'raw pg-logical-replication',
    load: `${total} inserts`,
    metrics: { changesPerSec: round(raw.rate, 0), rounds: perRound(raws), cpuUsPerChange: round(raw.cpuUs, 1), note: 'decode only' },
  });
  ctx.record({
    scenario: 'change-events',
    subject: 'change source → memory broker',
    load: `${total} inserts`,
    metrics: {
      changesPerSec: round(memory.rate, 0),
      rounds: perRound(memories),
      cpuUsPerChange: round(memory.cpuUs, 1),
      vsRaw: round(memory.rate / raw.rate, 2),
      target: '≥ 0.7×',
    },
  });

  if (!natsUp) {
    ctx.record({
      scenario: 'change-events',
      subject: 'change source → nats',
      load: '-',
      metrics: { status: `not reachable at ${NATS_URL}; skipped` },
    });
    return;
  }
  const prefix = randomName('CHG');
  const nats = await createNatsBroker({ url: NATS_URL, prefix: prefix.toLowerCase() });
  const topic = eventsTopic(contractFor('burst'));
  try {
    // A declared group, so JetStream keeps the events as it would for a receiver.
    await nats.declareGroup(topic, 'bench-receiver');
    const result = await sourceRun(server.url, 'burst_nats', total, nats);
    ctx.record({
      scenario: 'change-events',
      subject: 'change source → nats',
      load: `${total} inserts`,
      metrics: { changesPerSec: round(result.rate, 0), cpuUsPerChange: round(result.cpuUs, 1), vsRaw: round(result.rate / raw.rate, 2) },
    });
  } finally {
    const jsm = await jetstreamManager(nats.connection);
    await jsm.streams.delete(`${prefix}_${topic}`).catch(() => false);
    await nats.close();
  }
}

interface Run {
  /** Changes per second. */
  readonly rate: number;
  /** CPU time of this process per change, in microseconds. */
  readonly cpuUs: number;
}

function mean(runs: readonly Run[]): Run {
  return { rate: runs.reduce((sum, r) => sum + r.rate, 0) / runs.length, cpuUs: runs.reduce((sum, r) => sum + r.cpuUs, 0) / runs.length };
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

/** pg-logical-replication reading the slot: decoding only (no acknowledgements while it runs). */
async function rawDecode(url: string, slot: string, total: number): Promise<Run> {
  const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  let count = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  service.on('data', (_lsn: string, message: Pgoutput.Message) => {
    if (message.tag === 'insert' && ++count === total) resolveDone();
  });
  service.on('error', () => {});
  const cpu = process.cpuUsage();
  const started = performance.now();
  void service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['burst_pub'] }), slot).catch(() => {});
  await done;
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuMicros(cpu) / total;
  await service.destroy();
  return { rate: total / seconds, cpuUs };
}

/** The change source reading the slot and publishing to `broker`, until the broker confirmed every change. */
async function sourceRun(
  url: string,
  slot: string,
  total: number,
  broker: Parameters<typeof createPostgresChangeSource>[0]['broker'],
): Promise<Run> {
  const source = createPostgresChangeSource({
    connection: url,
    contract: contractFor('burst'),
    broker,
    slot,
    publication: 'burst_pub',
    deadLetters: false,
    lagCheckIntervalMs: 0,
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  await source.start();
  while (source.stats().published < total) await new Promise((resolve) => setTimeout(resolve, 2));
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = cpuMicros(cpu) / total;
  await source.close();
  return { rate: total / seconds, cpuUs };
}

async function steady(ctx: ScenarioContext, server: PrivatePostgresServer, db: pg.Client): Promise<void> {
  const rate = 500;
  const seconds = Math.max(2, Math.round(20 * ctx.scale));
  const total = rate * seconds;
  await db.query(
    'CREATE TABLE steady (id int PRIMARY KEY, name text NOT NULL, amount int NOT NULL, at timestamptz NOT NULL DEFAULT now())',
  );
  await db.query('CREATE PUBLICATION steady_pub FOR TABLE steady');
  await db.query(`SELECT pg_create_logical_replication_slot('steady', 'pgoutput')`);
  const contract = contractFor('steady');
  const broker = createMemoryBroker();
  const committedAt = new Float64Array(total + 1);
  const handledAt = new Float64Array(total + 1);
  let handled = 0;
  const receiver = createMessaging({ broker, service: 'bench-receiver', deadLetters: false, receipts: createMemoryReceiptStore() });
  receiver.on(contract, 'row.created', (data) => {
    handledAt[data.id] = clockMs();
    handled++;
  });
  await receiver.start();
  const source = createPostgresChangeSource({
    connection: server.url,
    contract,
    broker,
    slot: 'steady',
    publication: 'steady_pub',
    deadLetters: false,
    lagCheckIntervalMs: 0,
  });
  await source.start();
  const writer = new pg.Client(server.url);
  await writer.connect();
  try {
    const start = performance.now();
    for (let id = 1; id <= total; id++) {
      const due = start + (id - 1) * (1000 / rate);
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await writer.query('INSERT INTO steady (id, name, amount) VALUES ($1, $2, $3)', [id, `customer ${id}`, id % 1000]);
      committedAt[id] = clockMs();
    }
    const achieved = total / ((performance.now() - start) / 1000);
    const deadline = Date.now() + 30_000;
    while (handled < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const samples = new Samples();
    for (let id = 1; id <= total; id++) if (handledAt[id] !== 0) samples.add((handledAt[id] as number) - (committedAt[id] as number));
    const [p50, p99, max] = samples.percentiles(50, 99, 100);
    ctx.record({
      scenario: 'change-events',
      subject: 'commit → handler (memory broker)',
      load: `${rate} changes/s`,
      metrics: {
        p50Ms: round(p50 ?? Number.NaN, 2),
        p99Ms: round(p99 ?? Number.NaN, 2),
        maxMs: round(max ?? Number.NaN, 2),
        handled: samples.count,
        achievedPerSec: round(achieved, 0),
      },
    });
  } finally {
    await writer.end();
    await source.close();
    await receiver.close();
  }
}

/** One SQLite round: the burst written one way, then drained by a relay. */
interface SqliteRound {
  /** Rows (transactions) written per second. */
  readonly writes: number;
  /** Rows relayed (published and marked) per second. */
  readonly relayed: number;
}

async function sqliteBurst(ctx: ScenarioContext): Promise<void> {
  const total = Math.round(100_000 * ctx.scale);
  const rounds = ctx.scale < 1 ? 1 : 2;
  const results: Record<'plain' | 'outbox' | 'triggers', SqliteRound[]> = { plain: [], outbox: [], triggers: [] };
  for (let r = 0; r < rounds; r++) {
    results.plain.push(await sqliteRound('plain', total, r));
    results.outbox.push(await sqliteRound('outbox', total, r));
    results.triggers.push(await sqliteRound('triggers', total, r));
    ctx.log(
      `sqlite round ${r + 1}: writes plain ${round(results.plain[r]?.writes ?? 0, 0)}/s, outbox ${round(results.outbox[r]?.writes ?? 0, 0)}/s, ` +
        `triggers ${round(results.triggers[r]?.writes ?? 0, 0)}/s; relayed outbox ${round(results.outbox[r]?.relayed ?? 0, 0)}/s, ` +
        `triggers ${round(results.triggers[r]?.relayed ?? 0, 0)}/s`,
    );
  }
  const avg = (runs: SqliteRound[], field: keyof SqliteRound) => runs.reduce((sum, run) => sum + run[field], 0) / runs.length;
  const list = (runs: SqliteRound[], field: keyof SqliteRound) => runs.map((run) => round(run[field], 0)).join(' / ');
  const plainWrites = avg(results.plain, 'writes');
  const bareRelay = avg(results.outbox, 'relayed');
  ctx.record({
    scenario: 'change-events',
    subject: 'sqlite: insert only (no event)',
    load: `${total} inserts`,
    metrics: { writesPerSec: round(plainWrites, 0), rounds: list(results.plain, 'writes') },
  });
  ctx.record({
    scenario: 'change-events',
    subject: 'sqlite: insert + prepareEmit + outbox.enqueue',
    load: `${total} inserts`,
    metrics: {
      writesPerSec: round(avg(results.outbox, 'writes'), 0),
      rounds: list(results.outbox, 'writes'),
      vsPlain: round(avg(results.outbox, 'writes') / plainWrites, 2),
    },
  });
  ctx.record({
    scenario: 'change-events',
    subject: 'sqlite: insert with change triggers',
    load: `${total} inserts`,
    metrics: {
      writesPerSec: round(avg(results.triggers, 'writes'), 0),
      rounds: list(results.triggers, 'writes'),
      vsPlain: round(avg(results.triggers, 'writes') / plainWrites, 2),
    },
  });
  ctx.record({
    scenario: 'change-events',
    subject: 'sqlite: bare outbox relay → memory broker',
    load: `${total} entries`,
    metrics: { eventsPerSec: round(bareRelay, 0), rounds: list(results.outbox, 'relayed') },
  });
  ctx.record({
    scenario: 'change-events',
    subject: 'sqlite: change relay (trigger rows) → memory broker',
    load: `${total} changes`,
    metrics: {
      eventsPerSec: round(avg(results.triggers, 'relayed'), 0),
      rounds: list(results.triggers, 'relayed'),
      vsBareRelay: round(avg(results.triggers, 'relayed') / bareRelay, 2),
    },
  });
}

async function sqliteRound(kind: 'plain' | 'outbox' | 'triggers', total: number, r: number): Promise<SqliteRound> {
  const path = benchDatabasePath(`changes-${kind}-${r}-${process.pid}`);
  await removeDatabase(path);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE burst (id INTEGER PRIMARY KEY, name TEXT NOT NULL, amount INTEGER NOT NULL, at TEXT NOT NULL)');
  const outbox = createSqliteOutbox({ database: db });
  const contract = contractFor('burst');
  const broker = createMemoryBroker();
  const insert = db.prepare('INSERT INTO burst (id, name, amount, at) VALUES (?, ?, ?, ?)');
  try {
    let written: number;
    if (kind === 'outbox') {
      // The application builds each event itself (the same encoder, the same source), then writes row and message together.
      const messaging = createMessaging({ broker, service: '/sqlite/bench/burst', deadLetters: false, declareReceiverGroups: false });
      const write = db.transaction((id: number, at: string, message: OutboxMessage) => {
        insert.run(id, `customer ${id}`, id % 1000, at);
        outbox.enqueue([message]);
      });
      const started = performance.now();
      for (let id = 1; id <= total; id++) {
        const at = new Date().toISOString();
        const message = await messaging.prepareEmit(
          contract,
          'row.created',
          { id, name: `customer ${id}`, amount: id % 1000, at },
          {
            subject: String(id),
            key: `burst/${id}`,
          },
        );
        write(id, at, message);
      }
      written = performance.now() - started;
    } else {
      if (kind === 'triggers') installSqliteChangeTriggers(db, contract, { database: 'bench' });
      const write = db.transaction((id: number) => {
        insert.run(id, `customer ${id}`, id % 1000, new Date().toISOString());
      });
      const started = performance.now();
      for (let id = 1; id <= total; id++) write(id);
      written = performance.now() - started;
    }
    const writes = total / (written / 1000);
    if (kind === 'plain') return { writes, relayed: 0 };
    const relay =
      kind === 'outbox'
        ? createOutboxRelay({ store: outbox, broker, batchSize: 512 })
        : createSqliteChangeRelay({ outbox, broker, contracts: contract, deadLetters: false, batchSize: 512 });
    const started = performance.now();
    let relayed = 0;
    for (;;) {
      const n = await relay.runOnce();
      if (n === 0) break;
      relayed += n;
    }
    const seconds = (performance.now() - started) / 1000;
    if (relayed !== total) throw new Error(`relayed ${relayed} of ${total}`);
    return { writes, relayed: total / seconds };
  } finally {
    await outbox.close();
    db.close();
    await broker.close();
    await removeDatabase(path);
  }
}
