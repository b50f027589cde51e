import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';

/**
 * The W3C Trace Context harness's checks, written again in TypeScript so our own suite covers
 * every rule on every hop without Python: each case sends the harness's headers to the service
 * under test, which calls back a local server; the case checks the `traceparent` and `tracestate`
 * the call back carried. (The harness itself runs with `npm run trace-harness`; see docs/tracing.md.)
 */
const TRACE = '12345678901234567890123456789012';
const SPAN = '1234567890123456';
const VALID = `00-${TRACE}-${SPAN}-00`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const MEMBER = /^[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

export interface Received {
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: number;
  /** The tracestate members as the harness reads them (key → value), in order. */
  readonly state: Map<string, string>;
  readonly rawState: string | undefined;
}

export interface HarnessCase {
  readonly name: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly check: (received: Received) => void;
}

const members = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => `bar${String(i + from).padStart(2, '0')}=${String(i + from).padStart(2, '0')}`).join(',');
const sameTrace = (r: Received) => expect(r.traceId).toBe(TRACE);
const newTrace = (r: Received) => expect(r.traceId).not.toBe(TRACE);
const noState = (r: Received) => expect(r.rawState).toBeUndefined();

export const harnessCases: readonly HarnessCase[] = [
  { name: 'no traceparent: a new trace', headers: [], check: (r) => expect(r.traceId).toMatch(/^[0-9a-f]{32}$/) },
  {
    name: 'a valid traceparent: same trace, new parent id',
    headers: [['traceparent', `00-${TRACE}-${SPAN}-01`]],
    check: (r) => {
      sameTrace(r);
      expect(r.parentId).not.toBe(SPAN);
    },
  },
  {
    name: 'two traceparent headers: a new trace',
    headers: [
      ['traceparent', `00-${TRACE.slice(0, 31)}1-${SPAN}-01`],
      ['traceparent', VALID],
    ],
    check: newTrace,
  },
  { name: 'a misnamed traceparent: a new trace', headers: [['trace-parent', VALID]], check: newTrace },
  {
    name: 'header names in any case',
    headers: [
      ['TrAcEpArEnT', VALID],
      ['TRACESTATE', 'foo=1'],
    ],
    check: (r) => {
      sameTrace(r);
      expect(r.state.get('foo')).toBe('1');
    },
  },
  {
    name: 'version 00 with trailing data: a new trace',
    headers: [['traceparent', `${VALID}-what-the-future-will-be-like`]],
    check: newTrace,
  },
  { name: 'a future version with more fields: same trace', headers: [['traceparent', `cc-${TRACE}-${SPAN}-01-future`]], check: sameTrace },
  {
    name: 'a future version without a dash after the flags: a new trace',
    headers: [['traceparent', `cc-${TRACE}-${SPAN}-01.future`]],
    check: newTrace,
  },
  { name: 'version ff: a new trace', headers: [['traceparent', `ff-${TRACE}-${SPAN}-01`]], check: newTrace },
  {
    name: 'an all-zero trace id: a new trace',
    headers: [['traceparent', `00-${'0'.repeat(32)}-${SPAN}-01`]],
    check: (r) => expect(r.traceId).not.toBe('0'.repeat(32)),
  },
  { name: 'an all-zero parent id: a new trace', headers: [['traceparent', `00-${TRACE}-${'0'.repeat(16)}-01`]], check: newTrace },
  { name: 'illegal characters in the flags: a new trace', headers: [['traceparent', `00-${TRACE}-${SPAN}-.0`]], check: newTrace },
  { name: 'optional whitespace around the traceparent', headers: [['traceparent', `\t ${VALID} \t`]], check: sameTrace },
  {
    name: 'reserved flags are zeroed, sampled is kept',
    headers: [['traceparent', `00-${TRACE}-${SPAN}-fd`]],
    check: (r) => {
      sameTrace(r);
      expect(r.flags).toBe(0x01);
    },
  },
  {
    name: 'the random flag of a continued trace is kept (Level 2)',
    headers: [['traceparent', `00-${TRACE}-${SPAN}-02`]],
    check: (r) => {
      sameTrace(r);
      expect(r.flags & 0x02).toBe(0x02);
    },
  },
  {
    name: 'a restarted trace has the random flag set (Level 2)',
    headers: [['traceparent', 'garbage']],
    check: (r) => expect(r.flags & 0x02).toBe(0x02),
  },
  { name: 'a tracestate without a traceparent is discarded', headers: [['tracestate', 'foo=1,bar=2']], check: noState },
  {
    name: 'a tracestate after an invalid traceparent is discarded',
    headers: [
      ['traceparent', `${VALID}.`],
      ['tracestate', 'foo=1'],
    ],
    check: noState,
  },
  {
    name: 'a tracestate with a valid traceparent is passed on',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1,bar=2'],
    ],
    check: (r) => expect(r.rawState).toBe('foo=1,bar=2'),
  },
  {
    name: 'a misnamed tracestate is not read',
    headers: [
      ['traceparent', VALID],
      ['trace-state', 'foo=1'],
    ],
    check: noState,
  },
  {
    name: 'an empty tracestate is not sent',
    headers: [
      ['traceparent', VALID],
      ['tracestate', ''],
    ],
    check: (r) => {
      sameTrace(r);
      noState(r);
    },
  },
  {
    name: 'an empty tracestate line next to a valid one',
    headers: [
      ['traceparent', VALID],
      ['tracestate', ''],
      ['tracestate', 'foo=1'],
    ],
    check: (r) => expect(r.rawState).toBe('foo=1'),
  },
  {
    name: 'several tracestate lines are one list, in order',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1,bar=2'],
      ['tracestate', 'rojo=1,congo=2'],
      ['tracestate', 'baz=3'],
    ],
    check: (r) => expect(r.rawState).toBe('foo=1,bar=2,rojo=1,congo=2,baz=3'),
  },
  {
    name: 'a repeated key keeps one value',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1'],
      ['tracestate', 'foo=2'],
    ],
    check: (r) => expect(r.rawState).toBe('foo=1'),
  },
  {
    name: 'optional whitespace (spaces and tabs) in the tracestate',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1\t \t,\t \tbar=2,\t \tbaz=3'],
    ],
    check: (r) => expect(r.rawState).toBe('foo=1,bar=2,baz=3'),
  },
  {
    name: 'an illegal key discards the tracestate',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1,FOO=1'],
    ],
    check: noState,
  },
  {
    name: 'an illegal value discards the tracestate',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=,bar=3'],
    ],
    check: noState,
  },
  {
    name: 'a 257-character key discards the tracestate',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1'],
      ['tracestate', `${'z'.repeat(257)}=1`],
    ],
    check: noState,
  },
  {
    name: 'a 256-character key is passed on',
    headers: [
      ['traceparent', VALID],
      ['tracestate', 'foo=1'],
      ['tracestate', `${'z'.repeat(256)}=1`],
    ],
    check: (r) => expect(r.state.get('z'.repeat(256))).toBe('1'),
  },
  {
    name: '32 members are passed on',
    headers: [
      ['traceparent', VALID],
      ['tracestate', members(16)],
      ['tracestate', members(16, 17)],
    ],
    check: (r) => expect(r.state.size).toBe(32),
  },
  {
    name: '33 members discard the tracestate',
    headers: [
      ['traceparent', VALID],
      ['tracestate', members(16)],
      ['tracestate', members(17, 17)],
    ],
    check: noState,
  },
];

/** A server that records the headers of every call back, by path. */
export async function callbackServer(): Promise<{
  readonly url: string;
  readonly calls: Map<string, IncomingHttpHeaders>;
  close(): Promise<void>;
}> {
  const calls = new Map<string, IncomingHttpHeaders>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls.set(req.url ?? '', req.headers);
      res.setHeader('content-type', 'application/json');
      res.end('null');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** POSTs `body` to `url` with exactly these header lines (repeats kept), as the harness does. */
export function postRaw(url: string, headers: ReadonlyArray<readonly [string, string]>, body: string): Promise<200 | string> {
  const target = new URL(url);
  // Repeated names become repeated header lines (an array value); names keep their case.
  const lines: Record<string, string[]> = {
    'content-type': ['application/json'],
    accept: ['application/json'],
    'content-length': [String(Buffer.byteLength(body))],
  };
  for (const [name, value] of headers) {
    const values = lines[name] ?? [];
    values.push(value);
    lines[name] = values;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: lines }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk;
      });
      res.on('end', () => resolve(res.statusCode === 200 ? 200 : `${res.statusCode} ${text}`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** What a call back carried, read as the harness reads it (and checked to be well-formed). */
export function received(headers: IncomingHttpHeaders | undefined): Received {
  expect(headers, 'the service called back').toBeDefined();
  const traceparent = headers?.traceparent;
  expect(typeof traceparent).toBe('string');
  const match = TRACEPARENT.exec(traceparent as string);
  expect(match, `traceparent ${traceparent}`).not.toBeNull();
  const [, traceId, parentId, flags] = match as unknown as [string, string, string, string];
  const raw = headers?.tracestate;
  const rawState = Array.isArray(raw) ? raw.join(',') : raw;
  const state = new Map<string, string>();
  if (rawState !== undefined) {
    expect(rawState.length).toBeGreaterThan(0);
    for (const member of rawState.split(',')) {
      expect(member).toMatch(MEMBER);
      const eq = member.indexOf('=');
      state.set(member.slice(0, eq), member.slice(eq + 1));
    }
  }
  return { traceId, parentId, flags: Number.parseInt(flags, 16), state, rawState };
}

/** Runs every case against `endpoint`, one call back each, plus three call backs with distinct spans. */
export async function runHarnessCases(endpoint: string, callbacks: Awaited<ReturnType<typeof callbackServer>>): Promise<void> {
  let n = 0;
  for (const testCase of harnessCases) {
    const path = `/cb/${n++}`;
    const status = await postRaw(endpoint, testCase.headers, JSON.stringify([{ url: `${callbacks.url}${path}`, arguments: [] }]));
    expect(status, testCase.name).toBe(200);
    testCase.check(received(callbacks.calls.get(path)));
  }
  const paths = [0, 1, 2].map((i) => `/multi/${i}`);
  const status = await postRaw(
    endpoint,
    [['traceparent', `00-${TRACE}-${SPAN}-01`]],
    JSON.stringify(paths.map((path) => ({ url: `${callbacks.url}${path}`, arguments: [] }))),
  );
  expect(status).toBe(200);
  const spans = paths.map((path) => received(callbacks.calls.get(path)));
  expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([TRACE]));
  expect(new Set(spans.map((s) => s.parentId)).size).toBe(3);
}
