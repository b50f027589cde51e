/**
 * `switchboard tail`, run as users run it (the built bin in a child process) against a real
 * dashboard served on node:http. `npm test` builds first; run `npm run build` before this file alone.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDashboard, createFlowRecorder } from '@switchboard/dashboard';
import { afterEach, describe, expect, it } from 'vitest';
import { runBin } from './bin.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function run(args: readonly string[], env: Record<string, string> = {}) {
  const child = runBin(args, env);
  closers.push(child.kill);
  return child;
}

async function serve(token?: string) {
  const recorder = createFlowRecorder({ service: 'service-a' });
  const dashboard = createDashboard({ recorder, ...(token === undefined ? {} : { token }) });
  const server = createServer(dashboard.listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(
    () => new Promise((resolve) => server.close(resolve)),
    () => dashboard.close(),
    () => recorder.close(),
  );
  return { recorder, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('switchboard tail', () => {
  it('prints live events as NDJSON, with the backlog first, and stops after --count', async () => {
    const { recorder, url } = await serve();
    recorder.record({
      kind: 'message.publish',
      messageId: 'm-old',
      topic: 'service-b.messages',
      type: 'service-b.op.save',
      sendKind: 'invoke',
    });
    recorder.record({
      kind: 'message.publish',
      messageId: 'm-1',
      topic: 'service-b.messages',
      type: 'service-b.op.save',
      sendKind: 'invoke',
    });
    const tail = run(['tail', url, '--json', '--backlog', '1', '--count', '3']);
    await expect.poll(() => tail.out().split('\n').length, { timeout: 15_000 }).toBeGreaterThan(1);
    recorder.record({
      kind: 'message.deliver',
      messageId: 'm-1',
      topic: 'service-b.messages',
      group: 'service-b',
      attempt: 1,
      outcome: 'ack',
    });
    recorder.record({ kind: 'job.state', jobId: 'j-1', status: 'running' });
    expect(await tail.exited).toBe(0);
    const lines = tail
      .out()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line.kind, line.messageId ?? line.jobId])).toEqual([
      ['message.publish', 'm-1'],
      ['message.deliver', 'm-1'],
      ['job.state', 'j-1'],
    ]);
    expect(lines[1]).toMatchObject({ service: 'service-a', outcome: 'ack', attempt: 1 });
  });

  it('prints pretty lines, filtered by pattern, with the token from the environment', async () => {
    const { recorder, url } = await serve('tok-123');
    const tail = run(['tail', `${url}/_switchboard`, '--pattern', 'job', '--count', '1'], { SWITCHBOARD_DASHBOARD_TOKEN: 'tok-123' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const deadline = Date.now() + 15_000;
    while (tail.out() === '' && Date.now() < deadline) {
      recorder.record({ kind: 'message.publish', messageId: 'skip-me', topic: 'service-b.messages' });
      recorder.record({ kind: 'job.poll', jobId: 'job-42', poll: 2, jobStatus: 'running', durationMs: 12.34, status: 200 });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(await tail.exited).toBe(0);
    expect(tail.out()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} service-a {4}job\.poll +status=200 12\.3ms job=job-42\n$/);
  });

  it('fails with a problem document when the dashboard refuses (exit 1), and on a bad URL (exit 2)', async () => {
    const { url } = await serve('tok-123');
    const refused = run(['tail', url, '--json']);
    expect(await refused.exited).toBe(1);
    expect(JSON.parse(refused.err().trim())).toMatchObject({ code: 'SB_INTERNAL', detail: expect.stringContaining('401') });
    const usage = run(['tail', 'not a url']);
    expect(await usage.exited).toBe(2);
    expect(JSON.parse(usage.err().trim())).toMatchObject({ code: 'SB_BAD_REQUEST' });
  });
});
