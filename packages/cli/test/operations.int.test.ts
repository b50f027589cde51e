/**
 * `switchboard doctor`, `dlq` and `demo` as users run them — the bin in a child process — against the real
 * servers. What the checks report is compared with what each server says through its own client.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { runNodeToExit } from '@switchboard/testkit';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'switchboard.js');
const POSTGRES = 'postgres://postgres@127.0.0.1:5432/test';

function switchboard(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeToExit(bin, args, { cwd: root, env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' } });
}

interface Report {
  readonly ok: boolean;
  readonly checks: { engine: string; check: string; status: string; detail: string }[];
}

const find = (report: Report, engine: string, check: string) => report.checks.find((c) => c.engine === engine && c.check === check);

describe('switchboard doctor on the real servers', () => {
  const slot = `sb_doctor_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES });
  afterAll(async () => {
    await admin.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
    await admin.end();
  });

  it('reaches Redis, NATS and RabbitMQ and reports what the servers say', async () => {
    const { code, stdout, stderr } = await switchboard([
      'doctor',
      '--broker',
      'redis://127.0.0.1:6379',
      '--broker',
      'nats://127.0.0.1:4222',
      '--broker',
      'amqp://guest:guest@127.0.0.1:5672',
      '--json',
    ]);
    const report = JSON.parse(stdout) as Report;
    for (const engine of ['redis', 'nats', 'rabbitmq']) expect(find(report, engine, 'reachable')?.status).toBe('ok');
    expect(find(report, 'nats', 'jetstream')?.status).toBe('ok');
    const redis = new Redis('redis://127.0.0.1:6379');
    const [, appendonly] = (await redis.config('GET', 'appendonly')) as string[];
    const [, fsync] = (await redis.config('GET', 'appendfsync')) as string[];
    await redis.quit();
    expect(find(report, 'redis', 'appendonly')?.status).toBe(appendonly === 'yes' ? 'ok' : 'fail');
    expect(find(report, 'redis', 'appendfsync')?.status).toBe(fsync === 'always' ? 'ok' : fsync === 'everysec' ? 'warn' : 'fail');
    expect(code).toBe(report.ok ? 0 : 1);
    if (!report.ok) expect(JSON.parse(stderr)).toMatchObject({ code: 'SB_CONFIG_INVALID' });
  });

  it('checks the change source: wal_level, privilege, a missing slot, then its lag past a bound', async () => {
    await admin.connect();
    const wal = (await admin.query<{ wal_level: string }>('SHOW wal_level')).rows[0]?.wal_level;
    const missing = JSON.parse(
      (await switchboard(['doctor', '--changes', POSTGRES, '--slot', slot, '--publication', slot, '--json'])).stdout,
    ) as Report;
    expect(find(missing, 'postgres', 'wal_level')?.status).toBe(wal === 'logical' ? 'ok' : 'fail');
    expect(find(missing, 'postgres', 'replication privilege')?.status).toBe('ok');
    expect(find(missing, 'postgres', `slot ${slot}`)).toMatchObject({ status: 'fail', detail: expect.stringContaining('missing') });
    expect(find(missing, 'postgres', `publication ${slot}`)?.status).toBe('fail');
    expect(missing.ok).toBe(false);
    if (wal !== 'logical') return;
    await admin.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    // Some WAL the slot has not confirmed.
    await admin.query("SELECT pg_logical_emit_message(false, 'sb-doctor', repeat('x', 10000))");
    const lagging = await switchboard(['doctor', '--changes', POSTGRES, '--slot', slot, '--max-slot-lag', '0', '--json']);
    const report = JSON.parse(lagging.stdout) as Report;
    expect(find(report, 'postgres', `slot ${slot}`)).toMatchObject({ status: 'ok', detail: 'pgoutput, inactive' });
    expect(find(report, 'postgres', `slot ${slot} lag`)).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('over the bound of 0'),
    });
    expect(lagging.code).toBe(1);
    const within = JSON.parse((await switchboard(['doctor', '--changes', POSTGRES, '--slot', slot, '--json'])).stdout) as Report;
    expect(find(within, 'postgres', `slot ${slot} lag`)?.status).toBe('ok');
  });

  it("runs the change source's own setup check for a contract: what is missing, and how to fix it", async () => {
    const contracts = join(root, 'examples', 'demo', 'dist', 'contracts.js');
    const name = `sb_doctor_pub_${randomBytes(4).toString('hex')}`;
    const { code, stdout } = await switchboard([
      'doctor',
      '--changes',
      POSTGRES,
      '--contract',
      contracts,
      '--export',
      'serviceB',
      '--slot',
      name,
      '--publication',
      name,
      '--json',
    ]);
    const report = JSON.parse(stdout) as Report;
    const { checkPostgresChanges } = await import('@switchboard/changes');
    const { serviceB } = (await import(contracts)) as { serviceB: import('@switchboard/core').AnyContract };
    const direct = await checkPostgresChanges({ connection: POSTGRES, contract: serviceB, slot: name, publication: name });
    const codes = report.checks.filter((c) => c.check.startsWith('changes ')).map((c) => c.check.split(' ')[1]);
    expect(codes.sort()).toEqual(direct.problems.map((p) => p.code).sort());
    expect(codes).toEqual(expect.arrayContaining(['publication-missing', 'slot-missing']));
    expect(code).toBe(1);
    expect((await switchboard(['doctor', '--changes', POSTGRES, '--contract', contracts])).code).toBe(2);
  });

  it('fails an unreachable engine within its timeout, with a problem on stderr and a line per check', async () => {
    const { code, stdout, stderr } = await switchboard(['doctor', '--broker', 'nats://127.0.0.1:1', '--timeout', '1000']);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^fail\tnats\tnats:\/\/127\.0\.0\.1:1\treachable\t/);
    expect(JSON.parse(stderr)).toMatchObject({ code: 'SB_CONFIG_INVALID', detail: expect.stringContaining('nats reachable') });
  });
});

describe('switchboard demo', () => {
  it("runs the built demo with the options given, and fails with the demo's failure", async () => {
    const refused = await switchboard(['demo', '--no-such-option']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("Unknown option '--no-such-option'");
    expect(JSON.parse(refused.stderr.trim().split('\n').at(-1) ?? '')).toMatchObject({
      code: 'SB_HANDLER_FAILED',
      detail: 'the demo exited with code 1',
    });
    const help = await switchboard(['demo', '--demo-help']);
    expect(help).toMatchObject({ code: 0, stdout: expect.stringContaining('Run the demo') });
  });
});

describe('switchboard dlq on PostgreSQL and Redis stores', () => {
  it.each([
    ['postgres', POSTGRES],
    ['redis', `redis://127.0.0.1:6379/?prefix=sb-cli-${randomBytes(4).toString('hex')}:`],
  ])('lists and shows the dead letters of a %s store by URL', async (engine, url) => {
    const messageId = `cli-${randomBytes(6).toString('hex')}`;
    const store =
      engine === 'postgres'
        ? (await import('@switchboard/postgres')).createPostgresDeadLetterStore({ connectionString: url })
        : (await import('@switchboard/redis')).createRedisDeadLetterStore({
            url: 'redis://127.0.0.1:6379',
            prefix: new URL(url).searchParams.get('prefix') ?? '',
          });
    let id: string | undefined;
    try {
      const added = await store.add({
        messageId,
        source: 'cli-test',
        topic: 'orders.messages',
        group: 'orders',
        type: 'orders.order.paid',
        headers: { 'ce-id': messageId, 'ce-source': 'cli-test' },
        body: Buffer.from('{"orderId":"o-1"}'),
        reason: 'invalid',
        detail: 'orderId: expected a number',
        attempts: [],
      });
      id = added.id;
      const listed = await switchboard(['dlq', 'ls', '--store', url, '--message-id', messageId, '--json']);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toMatchObject({ deadLetters: [{ id: added.id, messageId, reason: 'invalid', group: 'orders' }] });
      const shown = JSON.parse((await switchboard(['dlq', 'show', added.id, '--store', url, '--json'])).stdout) as Record<string, unknown>;
      expect(shown).toMatchObject({ messageId, body: '{"orderId":"o-1"}', bodyEncoding: 'utf8', headers: { 'ce-source': 'cli-test' } });
      const dry = JSON.parse(
        (await switchboard(['dlq', 'replay', '--store', url, '--message-id', messageId, '--dry-run', '--json'])).stdout,
      );
      expect(dry).toMatchObject({ dryRun: true, wouldReplay: 1 });
    } finally {
      if (id !== undefined) await store.remove([id]);
      await store.close();
    }
  });
});
