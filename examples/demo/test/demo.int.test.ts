import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNodeToExit } from '@switchboard/testkit';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeToExit(main, args);
}

describe('the demo (built output, separate processes)', () => {
  it('--once --json prints one successful JSON line per pattern and exits 0', async () => {
    const { code, stdout, stderr } = await run(['--once', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.pattern)).toEqual([
      'sync-http',
      'async-http',
      'message',
      'request-reply',
      'event',
      'claim-check',
      'change-event',
    ]);
    for (const line of lines) {
      expect(line.ok).toBe(true);
      expect(typeof line.durationMs).toBe('number');
      expect(line.coupling).not.toBe('');
    }
    expect(lines[0]?.details).toMatchObject({ saved: true });
    const [syncHttp, asyncHttp, message, requestReply, event, claimCheck, changeEvent] = lines;
    // One trace from A's handler into B, in every pattern that reaches B: sync call, job, message, request, event.
    for (const report of [syncHttp, asyncHttp, message, requestReply, event]) {
      const details = report?.details as { traceId?: string; traceIdSeenByB?: string };
      expect(details.traceId, String(report?.pattern)).toMatch(/^[0-9a-f]{32}$/);
      expect(details.traceIdSeenByB, String(report?.pattern)).toBe(details.traceId);
    }
    const job = asyncHttp?.details as { statusUrl: string; statusRequests: number; result: { name: string } };
    expect(job.statusUrl).toMatch(/\/jobs\/[A-Za-z0-9_-]{20,}$/);
    expect(job.statusRequests).toBeGreaterThanOrEqual(1);
    expect(job.result.name).toBe('Ada Lovelace');
    expect(message?.details).toMatchObject({ receipt: { group: 'service-b', state: 'processed', type: 'service-b.op.save' } });
    // The typed answer of B's save through the broker, and its declared error for a name of digits.
    expect(requestReply?.details).toMatchObject({
      answer: { saved: true, id: (syncHttp?.details as { id?: string } | undefined)?.id, saves: 3 },
      refused: { code: 'NameRejected', data: { reason: 'digits only' } },
    });
    expect(event?.details).toMatchObject({ reacted: expect.arrayContaining(['service-b', 'service-c']) });
    const picture = claimCheck?.details as { bytes: number; sha256: string; seenByB: { sha256: string; png: boolean } };
    expect(picture.bytes).toBeGreaterThan(2_000_000);
    expect(picture.seenByB).toMatchObject({ sha256: picture.sha256, png: true });
    // The row B saved (the fourth save of the name: sync, message, request, this one) reached C as name.saved,
    // from B's SQLite names table by its triggers and outbox.
    const change = changeEvent?.details as { id: string; saves: number; messageId: string; source: string; seenSaves: number };
    expect(change.id).toBe((syncHttp?.details as { id?: string } | undefined)?.id);
    expect(change.saves).toBe(4);
    expect(change.seenSaves).toBe(4);
    expect(change.source).toBe('/sqlite/service-b-names/names');
    expect(change.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('refuses an at-most-once engine as its broker before starting anything, naming the at-most-once option', async () => {
    const { code, stdout, stderr } = await run(['--once', '--json', '--broker', 'mqtt://127.0.0.1:1883']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('at-most-once engine');
    expect(stderr).toContain('atMostOnce');
  });

  it('interactive mode keeps the services up and stops them cleanly on Ctrl-C', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-demo-test-'));
    const child = spawn(process.execPath, [main, '--port-a', '0', '--port-b', '0', '--port-c', '0', '--data-dir', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('Ctrl-C stops them.')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`demo exited early with ${String(code)}: ${stdout}`)));
      });
      expect(stdout).toContain('1. Synchronous HTTP');
      const url = /ServiceB at (http:\/\/[^\s,]+)/.exec(stdout)?.[1];
      expect(url).toBeDefined();
      const response = await fetch(`${url}/ops/save`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Grace Hopper' }),
      });
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ saved: true });
      child.kill('SIGINT');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      // Whatever failed above, the demo and its services must not outlive the test: Ctrl-C stops
      // the services with it; SIGKILL only if it does not exit.
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
