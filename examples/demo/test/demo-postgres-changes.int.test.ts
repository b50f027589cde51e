import { fileURLToPath } from 'node:url';
import { PrivatePostgresServer, runNodeToExit } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

// ServiceB's names table on PostgreSQL, its changes read by logical replication: that needs
// `wal_level = logical`, which the shared server does not run, so the test starts its own.
const server = new PrivatePostgresServer({ settings: { wal_level: 'logical' } });

beforeAll(async () => {
  await server.start();
});

afterAll(async () => {
  await server.dispose();
});

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeToExit(main, ['--once', '--json', ...args]);
}

describe('the demo with --changes postgres://', () => {
  it('prints an ok change-event line from PostgreSQL logical replication, run after run on the same slot', async () => {
    for (const run of [1, 2]) {
      const { code, stdout, stderr } = await runDemo(['--changes', server.url]);
      expect(stderr).toBe('');
      const lines = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { pattern: string; ok: boolean; summary: string; details: Record<string, unknown> });
      for (const line of lines) expect(line.ok, `run ${run}, ${line.pattern}: ${line.summary}`).toBe(true);
      expect(code).toBe(0);
      const change = lines.find((line) => line.pattern === 'change-event');
      // Four saves per run (sync, message, request-reply, change-event) of the same name.
      expect(change?.details).toMatchObject({ saves: run * 4, seenSaves: run * 4, source: '/postgres/postgres/public.names' });
    }
    const db = new pg.Client(server.url);
    await db.connect();
    try {
      const rows = await db.query('SELECT name, saves FROM names');
      expect(rows.rows).toEqual([{ name: 'Ada Lovelace', saves: 8 }]);
      const slot = await db.query("SELECT plugin, active FROM pg_replication_slots WHERE slot_name = 'service_b_names'");
      expect(slot.rows).toEqual([{ plugin: 'pgoutput', active: false }]);
    } finally {
      await db.end();
    }
  });

  it('a server without logical WAL: ServiceB refuses to start, naming the setting', async () => {
    const replica = new PrivatePostgresServer();
    await replica.start();
    try {
      const { code, stdout, stderr } = await runDemo(['--changes', replica.url]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr).toContain('wal_level');
    } finally {
      await replica.dispose();
    }
  });
});
