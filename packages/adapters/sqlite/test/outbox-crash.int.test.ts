import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createOutboxRelay } from '@switchboard/core';
import { createSqliteBroker, createSqliteOutbox } from '@switchboard/sqlite';
import { DeliveryRecorder, randomName, testMessage, waitFor } from '@switchboard/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// The relay child runs the built packages (`npx tsc -b packages/adapters/sqlite`), as users do.
const child = fileURLToPath(new URL('./outbox-crash-relay.mjs', import.meta.url));
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-outbox-crash-'));
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @switchboard/sqlite first: npx tsc -b packages/adapters/sqlite');
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite outbox under a relay crash', () => {
  it('a relay SIGKILLed between confirm and mark: a new relay republishes the rest, duplicates only with the same MessageIds', async () => {
    const outboxPath = join(dir, `${randomName('outbox')}.db`);
    const brokerPath = join(dir, `${randomName('broker')}.db`);
    const topic = randomName('orders');
    const group = randomName('billing');
    const [total, batchSize, hangAfter, leaseMs] = [500, 50, 3, 300];

    // The application: orders and their messages, committed together, 10 per transaction.
    const app = new Database(outboxPath);
    app.pragma('journal_mode = WAL');
    app.exec('CREATE TABLE orders (id TEXT PRIMARY KEY)');
    const outbox = createSqliteOutbox({ database: app });
    const ids: string[] = [];
    for (let t = 0; t < total / 10; t++) {
      const messages = Array.from({ length: 10 }, () => testMessage(topic));
      ids.push(...messages.map((m) => m.id));
      app.transaction(() => {
        for (const m of messages) app.prepare('INSERT INTO orders (id) VALUES (?)').run(m.id);
        outbox.enqueue(messages);
      })();
    }

    const consumer = createSqliteBroker({ path: brokerPath, pollIntervalMs: 10 });
    await consumer.declareGroup(topic, group);
    const recorder = new DeliveryRecorder();
    await consumer.subscribe({ topic, group, maxInFlight: 256 }, recorder.handler);
    try {
      const relayProcess = spawn(process.execPath, [child, outboxPath, brokerPath, String(hangAfter), String(batchSize), String(leaseMs)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
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

      // Batches before the last were marked; the last was confirmed by the broker but not marked.
      const unmarked = confirmed[hangAfter - 1] as string[];
      expect(confirmed.flat()).toEqual(ids.slice(0, hangAfter * batchSize));
      expect(await outbox.pendingCount()).toBe(total - (hangAfter - 1) * batchSize);

      // A new relay takes over once the dead relay's lease ran out.
      const publisher = createSqliteBroker({ path: brokerPath });
      const relay = createOutboxRelay({ store: outbox, broker: publisher, batchSize, leaseMs: 5000, pollIntervalMs: 20 });
      relay.start();
      await recorder.waitForUnique(total, 60_000);
      await waitFor(() => recorder.count >= total + unmarked.length, 'the republished batch to be delivered', 10_000);
      await relay.stop();
      await publisher.close();

      expect(recorder.unique()).toEqual(new Set(ids));
      expect(await outbox.pendingCount()).toBe(0);
      // Every message at least once; the only duplicates are the unmarked batch, with identical ids.
      expect(recorder.count).toBe(total + unmarked.length);
      expect(new Set(recorder.duplicates())).toEqual(new Set(unmarked));
      expect(app.prepare('SELECT count(*) FROM orders').pluck().get()).toBe(total);
    } finally {
      await consumer.close();
      await outbox.close();
      app.close();
    }
  });
});
