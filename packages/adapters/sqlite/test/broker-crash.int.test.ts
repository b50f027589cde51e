import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSqliteBroker } from '@switchboard/sqlite';
import { DeliveryRecorder, randomName, testMessage, waitFor } from '@switchboard/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// The child processes run the built packages (`npx tsc -b packages/adapters/sqlite`), as users do.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sb-sqlite-crash-'));
const children: ChildProcess[] = [];

function start(script: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<NodeJS.Signals | number | null> } {
  const child = spawn(process.execPath, [join(fixtures, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  return { child, lines, exited };
}

function logged(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @switchboard/sqlite first: npx tsc -b packages/adapters/sqlite');
});

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite broker under process crashes', () => {
  it('a consumer SIGKILLed mid-batch loses nothing: a new consumer gets every unacked message', async () => {
    const path = join(dir, `${randomName('consumer')}.db`);
    const topic = randomName('topic');
    const group = randomName('group');
    const total = 10_000;
    const ackTimeoutMs = 1000;
    const publisher = createSqliteBroker({ path });
    try {
      await publisher.declareGroup(topic, group);
      const firstLog = join(dir, `${randomName('first')}.log`);
      const first = start('broker-consumer.mjs', [path, topic, group, firstLog, String(ackTimeoutMs)]);
      await waitFor(() => first.lines.includes('ready'), 'the first consumer to start', 20_000);

      const ids: string[] = [];
      const publishing = (async () => {
        for (let i = 0; i < total; i += 100) {
          const batch = Array.from({ length: 100 }, () => testMessage(topic));
          ids.push(...batch.map((m) => m.id));
          await publisher.publishBatch(batch);
        }
      })();
      await waitFor(() => logged(firstLog).length >= 2000, 'the first consumer to handle 2000 messages', 60_000, 2);
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await publishing;
      const handledBeforeCrash = logged(firstLog).length;
      expect(handledBeforeCrash).toBeLessThan(total);

      const secondLog = join(dir, `${randomName('second')}.log`);
      const second = start('broker-consumer.mjs', [path, topic, group, secondLog, String(ackTimeoutMs)]);
      const handled = () => new Set([...logged(firstLog), ...logged(secondLog)]);
      await waitFor(() => handled().size >= total, 'every message to be handled by one consumer or the other', 60_000, 20);
      const all = [...logged(firstLog), ...logged(secondLog)];
      const seen = new Set(all);
      const lost = ids.filter((id) => !seen.has(id));
      expect(lost).toEqual([]);
      expect(seen).toEqual(new Set(ids));
      // At-least-once: messages the first consumer handled but had not acked come again.
      console.info(
        `consumer crash: ${total} published, ${handledBeforeCrash} handled before SIGKILL, 0 lost, ${all.length - total} duplicates`,
      );
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      await publisher.close();
    }
  });

  it('a publisher SIGKILLed right after publish resolved: the message is still delivered', async () => {
    const path = join(dir, `${randomName('publisher')}.db`);
    const topic = randomName('topic');
    const group = randomName('group');
    const consumer = createSqliteBroker({ path });
    try {
      await consumer.declareGroup(topic, group);
      const publisher = start('broker-publisher.mjs', [path, topic]);
      expect(await publisher.exited).toBe('SIGKILL');
      const id = publisher.lines[0];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      const recorder = new DeliveryRecorder();
      await consumer.subscribe({ topic, group }, recorder.handler);
      await recorder.waitForCount(1, 10_000);
      expect(recorder.ids()).toEqual([id]);
      expect(new TextDecoder().decode(recorder.received[0]!.delivery.body)).toBe('survives');
    } finally {
      await consumer.close();
    }
  });
});
