import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobRequestInfo } from '@switchboard/http';
import { createJobsClient } from '@switchboard/http';
import { afterEach, describe, expect, it } from 'vitest';
import { analysis } from './jobs-fixture.js';

// A monitor written with plain node:http, answering a scripted sequence: the client is tested
// against the wire protocol, not against Switchboard's own server.
type Step = { status: number; headers?: Record<string, string>; body?: unknown };

async function scriptedMonitor(
  steps: Step[],
): Promise<{ url: string; seen: Array<{ path: string; prefer?: string; ifNoneMatch?: string }>; close(): Promise<void> }> {
  const seen: Array<{ path: string; prefer?: string; ifNoneMatch?: string }> = [];
  let index = 0;
  const server = createServer((req, res) => {
    seen.push({
      path: req.url ?? '',
      ...(req.headers.prefer ? { prefer: String(req.headers.prefer) } : {}),
      ...(req.headers['if-none-match'] ? { ifNoneMatch: req.headers['if-none-match'] } : {}),
    });
    if (req.url?.endsWith('/result')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ words: 1, text: 'done' }));
      return;
    }
    const step = steps[Math.min(index++, steps.length - 1)] as Step;
    const body = step.body === undefined ? '' : JSON.stringify(step.body);
    res
      .writeHead(step.status, {
        ...(body ? { 'content-type': step.status >= 400 ? 'application/problem+json' : 'application/json' } : {}),
        ...step.headers,
      })
      .end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const running = {
  id: 'job1',
  operation: 'analyze',
  status: 'running',
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt: '2025-01-01T00:00:00.000Z',
  attempts: 1,
};
const overloaded = { type: 'urn:switchboard:error:overloaded', title: 'Overloaded', status: 503, code: 'SB_OVERLOADED' };

describe('jobs client polling', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it('honours Retry-After in both forms with a floor and a cap, and retries 429 / 5xx while polling', async () => {
    const peer = await scriptedMonitor([
      { status: 503, headers: { 'retry-after': '0' }, body: overloaded },
      {
        status: 200,
        headers: { 'retry-after': new Date(Date.now() - 60_000).toUTCString(), etag: '"2"' },
        body: { ...running, progress: { percent: 10 } },
      },
      { status: 429, headers: { 'retry-after': '3600' }, body: { ...overloaded, status: 429, code: 'SB_TOO_MANY_REQUESTS' } },
      { status: 304, headers: { 'retry-after': '3600', etag: '"2"' } },
      { status: 200, headers: { etag: '"3"' }, body: { ...running, progress: { percent: 90 } } },
      { status: 303, headers: { location: '/jobs/job1/result' }, body: { ...running, status: 'succeeded' } },
    ]);
    closers.push(peer.close);
    const client = createJobsClient(analysis, { baseUrl: peer.url, wait: { transport: 'poll', minIntervalMs: 5, maxIntervalMs: 20 } });
    closers.push(() => client.close());
    const requests: JobRequestInfo[] = [];
    const progress: unknown[] = [];
    const result = await client.wait(
      { operation: 'analyze', jobId: 'job1' },
      { onRequest: (info) => requests.push(info), onProgress: (value) => progress.push(value) },
    );
    expect(result).toEqual({ words: 1, text: 'done' });
    expect(requests.map((info) => `${info.kind} ${info.status}`)).toEqual([
      'status 503',
      'status 200',
      'status 429',
      'status 304',
      'status 200',
      'status 303',
      'result 200',
    ]);
    expect(progress).toEqual([{ percent: 10 }, { percent: 90 }]);
    // Conditional polls after the first ETag; no long-poll preference in plain polling.
    expect(peer.seen[2]?.ifNoneMatch).toBe('"2"');
    expect(peer.seen.every((request) => request.prefer === undefined)).toBe(true);
  });

  it('gives up after maxErrors consecutive failures with the last error', async () => {
    const peer = await scriptedMonitor([{ status: 503, headers: { 'retry-after': '0' }, body: overloaded }]);
    closers.push(peer.close);
    const client = createJobsClient(analysis, { baseUrl: peer.url, wait: { minIntervalMs: 1, maxErrors: 3 } });
    closers.push(() => client.close());
    await expect(client.wait({ operation: 'analyze', jobId: 'job1' })).rejects.toMatchObject({ code: 'SB_OVERLOADED' });
    expect(peer.seen).toHaveLength(3);
    // Long-polling is asked for by default; this server does not apply it.
    expect(peer.seen[0]?.prefer).toMatch(/^wait=\d+$/);
  });

  it('falls back to polling when the server offers no event stream', async () => {
    const peer = await scriptedMonitor([
      { status: 200, body: running },
      { status: 303, headers: { location: '/jobs/job1/result' }, body: { ...running, status: 'succeeded' } },
    ]);
    closers.push(peer.close);
    const client = createJobsClient(analysis, { baseUrl: peer.url, wait: { transport: 'sse', minIntervalMs: 1 } });
    closers.push(() => client.close());
    const requests: JobRequestInfo[] = [];
    expect(await client.wait({ operation: 'analyze', jobId: 'job1' }, { onRequest: (info) => requests.push(info) })).toEqual({
      words: 1,
      text: 'done',
    });
    expect(requests.map((info) => info.kind)).toEqual(['events', 'status', 'result']);
  });

  it('refuses unknown and sync-only operations before sending anything', async () => {
    const client = createJobsClient(analysis, { baseUrl: 'http://127.0.0.1:9' });
    closers.push(() => client.close());
    await expect(client.submit('ping', {})).rejects.toMatchObject({ code: 'SB_CONFIG_INVALID' });
    await expect(client.submit('analyze', { text: 3 } as unknown as { text: string })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
    await expect(client.wait({ operation: 'nope' as 'analyze', jobId: 'x' })).rejects.toMatchObject({ code: 'SB_UNKNOWN_OPERATION' });
  });
});
