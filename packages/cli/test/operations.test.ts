/**
 * `dlq`, `receipts`, `jobs` and `doctor`, run in process (`run(argv, io)`) against SQLite files and
 * a service on loopback: the same code the bin runs, with its streams captured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineContract, message, PermanentError } from '@switchboard/core';
import { createHttpService } from '@switchboard/http';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { createSqliteBroker, createSqliteDeadLetterStore, createSqliteJobStore, createSqliteReceiptStore } from '@switchboard/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { run } from '../src/program.js';

const orders = defineContract({
  name: 'orders',
  messages: { 'order.paid': message({ schema: z.strictObject({ orderId: z.string() }) }) },
});

async function cli(args: readonly string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { NO_COLOR: '1', ...env },
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

describe('dlq, receipts and jobs on SQLite files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
  const files = {
    broker: join(dir, 'broker.db'),
    dead: join(dir, 'dead.db'),
    receipts: join(dir, 'receipts.db'),
    jobs: join(dir, 'jobs.db'),
  };
  const store = `sqlite:${files.dead}`;
  let failing = true;
  const handled: string[] = [];
  let receiver: Messaging;
  let sender: Messaging;
  let url: string;
  let close: () => Promise<void>;
  const sent: string[] = [];

  beforeAll(async () => {
    const broker = createSqliteBroker({ path: files.broker, pollIntervalMs: 5 });
    const deadLetters = createSqliteDeadLetterStore({ path: files.dead });
    const receipts = createSqliteReceiptStore({ path: files.receipts });
    receiver = createMessaging({ broker, service: 'orders', receipts, deadLetters }).handle(orders, 'order.paid', (data) => {
      if (failing) throw new PermanentError(`order ${data.orderId} refused`);
      handled.push(data.orderId);
      return { ok: true };
    });
    await receiver.start();
    sender = createMessaging({ broker, service: 'shop', deadLetters: false });
    for (const orderId of ['o-1', 'o-2', 'o-3']) sent.push((await sender.send(orders, 'order.paid', { orderId })).messageId);
    for (const id of sent) await receiver.receipts.wait(id, { source: 'shop', timeoutMs: 10_000 });
    const http = createHttpService({
      contract: defineContract({ name: 'orders-http', operations: {} }),
      handlers: {},
      routes: receiver.routes(),
    });
    url = (await http.listen()).url;
    const jobs = createSqliteJobStore({ path: files.jobs });
    await jobs.create({ operation: 'report', input: {} });
    await jobs.close();
    close = async () => {
      await http.close();
      await receiver.close();
      await broker.close();
      await Promise.all([deadLetters.close(), receipts.close()]);
    };
  });
  afterAll(async () => {
    await close?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists dead letters with their reasons, filtered', async () => {
    const all = await cli(['dlq', 'ls', '--store', store, '--json']);
    expect(all.code).toBe(0);
    const { deadLetters } = JSON.parse(all.stdout) as {
      deadLetters: { messageId: string; reason: string; group: string; status: string }[];
    };
    expect(deadLetters.map((d) => d.messageId).sort()).toEqual([...sent].sort());
    expect(deadLetters.every((d) => d.reason === 'permanent' && d.group === 'orders' && d.status === 'pending')).toBe(true);
    const none = await cli(['dlq', 'ls', '--store', store, '--reason', 'invalid']);
    expect(none).toMatchObject({ code: 0, stdout: '', stderr: 'no dead letters match\n' });
    const text = await cli(['dlq', 'ls', '--store', store, '--limit', '2']);
    expect(text.stdout.trim().split('\n')).toHaveLength(2);
    expect(text.stdout).toContain('\tpending\tpermanent\torders\torders.order.paid\t');
  });

  it('shows one with its exact headers, body and attempts', async () => {
    const { deadLetters } = JSON.parse((await cli(['dlq', 'ls', '--store', store, '--json'])).stdout) as { deadLetters: { id: string }[] };
    const shown = await cli(['dlq', 'show', deadLetters[0]?.id ?? '', '--store', store, '--json']);
    expect(shown.code).toBe(0);
    const entry = JSON.parse(shown.stdout) as {
      headers: Record<string, string>;
      body: string;
      bodyEncoding: string;
      attempts: { error: { detail: string } }[];
    };
    expect(entry.bodyEncoding).toBe('utf8');
    expect(JSON.parse(entry.body)).toMatchObject({ orderId: expect.stringMatching(/^o-\d$/) });
    expect(entry.headers['ce-source']).toBe('shop');
    expect(entry.attempts[0]?.error.detail).toMatch(/refused/);
    const missing = await cli(['dlq', 'show', 'nope', '--store', store]);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toMatchObject({ code: 'SB_NOT_FOUND' });
  });

  it('replays: --dry-run lists and touches nothing; then the same MessageIds are processed', async () => {
    const dry = await cli(['dlq', 'replay', '--store', store, '--reason', 'permanent', '--dry-run', '--json']);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, wouldReplay: 3 });
    const noSelection = await cli(['dlq', 'replay', '--store', store, '--broker', `sqlite:${files.broker}`]);
    expect(noSelection.code).toBe(2);
    expect(JSON.parse(noSelection.stderr)).toMatchObject({ code: 'SB_BAD_REQUEST' });
    failing = false;
    const replay = await cli([
      'dlq',
      'replay',
      '--store',
      store,
      '--all',
      '--limit',
      '2',
      '--broker',
      `sqlite:${files.broker}`,
      '--receipts',
      `sqlite:${files.receipts}`,
      '--json',
    ]);
    expect(replay.code).toBe(0);
    const result = JSON.parse(replay.stdout) as { replayed: number; entries: { messageId: string }[] };
    expect(result.replayed).toBe(2);
    for (const { messageId } of result.entries) {
      const receipt = await receiver.receipts.wait(messageId, { source: 'shop', timeoutMs: 10_000 });
      expect(receipt?.groups).toMatchObject([{ group: 'orders', state: 'processed' }]);
    }
    expect(handled).toHaveLength(2);
    const left = JSON.parse((await cli(['dlq', 'ls', '--store', store, '--status', 'pending', '--json'])).stdout) as {
      deadLetters: unknown[];
    };
    expect(left.deadLetters).toHaveLength(1);
  });

  it('asks a service for a receipt over HTTP', async () => {
    const [first = ''] = sent;
    const found = await cli(['receipts', first, '--url', url, '--source', 'shop', '--json']);
    expect(found.code).toBe(0);
    expect(JSON.parse(found.stdout)).toMatchObject({ messageId: first, source: 'shop', groups: [{ group: 'orders' }] });
    const text = await cli(['receipts', first, '--url', url, '--source', 'shop']);
    expect(text.stdout).toMatch(new RegExp(`^${first} from shop: done\\norders\\t(processed|dead-lettered)\\t`));
    const missing = await cli(['receipts', first, '--url', url, '--source', 'someone-else']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stderr)).toMatchObject({ code: 'SB_RECEIPT_NOT_FOUND' });
  });

  it('counts jobs in a job store', async () => {
    const counted = await cli(['jobs', '--store', `sqlite:${files.jobs}`, '--json']);
    expect(JSON.parse(counted.stdout)).toEqual({ counts: { queued: 1, running: 0 } });
  });

  it('refuses a store it cannot name, a SQLite file that is not there, and checks nothing without a target', async () => {
    expect((await cli(['dlq', 'ls', '--store', 'ftp://x'])).code).toBe(2);
    const absent = await cli(['jobs', '--store', `sqlite:${join(dir, 'absent.db')}`]);
    expect(absent.code).toBe(2);
    expect(JSON.parse(absent.stderr).detail).toContain('No SQLite file');
    expect((await cli(['doctor'])).code).toBe(2);
    const embedded = await cli(['doctor', '--broker', `sqlite:${files.broker}`, '--json']);
    expect(JSON.parse(embedded.stdout)).toMatchObject({ ok: true, checks: [{ engine: 'sqlite', status: 'ok' }] });
    const unreachable = await cli(['doctor', '--broker', 'redis://127.0.0.1:1', '--timeout', '500', '--json']);
    expect(unreachable.code).toBe(1);
    expect(JSON.parse(unreachable.stdout)).toMatchObject({ ok: false, checks: [{ engine: 'redis', check: 'reachable', status: 'fail' }] });
  });
});
