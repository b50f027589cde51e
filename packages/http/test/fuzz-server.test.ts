/**
 * Fuzzing the HTTP server over real loopback sockets (undici, node:http): random methods, paths,
 * headers (`Idempotency-Key`, `Prefer` in every parameter form, `traceparent`/`tracestate` garbage,
 * content types, `Switchboard-Timeout-Ms`, `Switchboard-Callback`, `If-None-Match`) and bodies
 * (random bytes, invalid UTF-8, deep JSON, huge numbers, wrong types, over the limit), on operation
 * calls and on the jobs routes. Properties: no 5xx unless the handler itself failed; every
 * 4xx/5xx is `application/problem+json` with a registry code and no stack or internal text; nothing
 * stays in flight; and the server keeps answering (a health request after every run).
 */

import { once } from 'node:events';
import { connect } from 'node:net';
import {
  defineContract,
  errorRegistry,
  type HandlerContext,
  type Handlers,
  normalizeTracestate,
  operation,
  parseTraceparent,
} from '@switchboard/core';
import type { HttpJobs, HttpService } from '@switchboard/http';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createMemoryJobStore } from '@switchboard/memory';
import { answerViolations, deepJson, type FuzzAnswer, fuzzParameters } from '@switchboard/testkit';
import fc from 'fast-check';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

/** The HTTP server's default `maxJsonDepth`. */
const DEFAULT_MAX_JSON_DEPTH = 64;

const SECRET = 'secret-upstream http://db.internal:5432';

const contract = defineContract({
  name: 'fuzzed',
  operations: {
    echo: operation({
      input: z.object({ name: z.string().max(200), n: z.number().optional() }),
      output: z.object({ name: z.string(), n: z.number().optional() }),
      errors: { Refused: { status: 422, data: z.object({ reason: z.string() }) } },
    }),
    /** Takes any JSON and answers it back: deep or odd values reach the handler and the answer. */
    any: operation({ input: z.unknown(), output: z.unknown() }),
    /** The handler fails: the only operation allowed a 5xx. */
    fail: operation({ input: z.object({}).passthrough(), output: z.object({}) }),
    /** Waits a little, or until its signal aborts (deadlines). */
    slow: operation({ input: z.object({ ms: z.number().int().min(0).max(50) }).passthrough(), output: z.object({ done: z.boolean() }) }),
    job: operation({ input: z.object({ n: z.number() }).passthrough(), output: z.object({ n: z.number() }) }),
    report: operation({ input: z.object({}).passthrough(), output: z.object({ ok: z.boolean() }), mode: 'async' }),
  },
});

/** The trace context each handler reached over HTTP was given, with what the request carried. */
const traces: {
  incoming: string | undefined;
  incomingState: string | undefined;
  traceparent: string | undefined;
  tracestate: string | undefined;
}[] = [];

let reachedHandlers = 0;

function noteTrace(ctx: HandlerContext): void {
  if (ctx.via !== 'http') return;
  traces.push({
    incoming: ctx.headers?.traceparent,
    incomingState: ctx.headers?.tracestate,
    traceparent: ctx.traceparent,
    tracestate: ctx.tracestate,
  });
}

const handlers: Handlers<typeof contract> = {
  echo: (input, ctx) => {
    noteTrace(ctx);
    return { name: input.name, ...(input.n === undefined ? {} : { n: input.n }) };
  },
  any: (input, ctx) => {
    noteTrace(ctx);
    return input;
  },
  fail: () => {
    throw new Error(SECRET);
  },
  slow: (input, ctx) =>
    new Promise((resolve, reject) => {
      noteTrace(ctx);
      const timer = setTimeout(() => resolve({ done: true }), input.ms);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        },
        { once: true },
      );
    }),
  job: (input, ctx) => {
    noteTrace(ctx);
    return { n: input.n };
  },
  report: () => ({ ok: true }),
};

const BODY_LIMIT = 64 * 1024;
const known = new Set(Object.keys(errorRegistry));

let service: HttpService;
let jobs: HttpJobs;
let client: Client;
let serverUrl: string;
/** Ids of jobs that exist (submitted in `beforeAll`), for the monitor routes. */
const jobIds: string[] = [];
/** Jobs of the operation whose handler fails. */
const failingJobs = new Set<string>();

async function send(method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<FuzzAnswer> {
  const response = await client.request({ method, path, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.body.text();
  return { method, status: response.statusCode, headers: response.headers, body: text };
}

beforeAll(async () => {
  jobs = enableJobs(contract, {
    store: createMemoryJobStore(),
    maxWaitSeconds: 1,
    sseHeartbeatMs: 50,
    worker: { pollIntervalMs: 10, leaseMs: 2_000, heartbeatMs: 50 },
  });
  service = createHttpService({
    contract,
    handlers,
    routes: jobs.routes,
    interceptors: jobs.interceptors,
    bodyLimit: BODY_LIMIT,
    bodyTimeoutMs: 2_000,
  });
  jobs.start(service);
  const { url } = await service.listen();
  serverUrl = url;
  client = new Client(url, { pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  for (const n of [1, 2]) {
    const submitted = await send('POST', '/ops/job', { 'content-type': 'application/json', prefer: 'respond-async' }, json({ n }));
    jobIds.push((JSON.parse(submitted.body) as { id: string }).id);
  }
});

afterAll(async () => {
  await client?.close();
  await jobs?.close({ timeoutMs: 1_000 });
  await service?.close({ timeoutMs: 1_000 });
});

function json(value: unknown): Uint8Array {
  return new Uint8Array(Buffer.from(JSON.stringify(value), 'utf8'));
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

// ---------------------------------------------------------------------------------------------
// Requests

/** A header value undici will send (no CR, LF or NUL; Latin-1), not starting or ending with blanks. */
const safeValue = (max = 80): fc.Arbitrary<string> =>
  fc
    .string({
      unit: fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0xa1, max: 0xff })).map((c) => String.fromCharCode(c)),
      maxLength: max,
    })
    .map((value) => value || 'x');

const idempotencyKey = fc.oneof(
  fc.constantFrom('k1', 'k2', 'key-with-body-a', ' '.repeat(1).trim() || 'x', 'ä', '%00'),
  safeValue(40),
  fc.integer({ min: 250, max: 300 }).map((n) => 'k'.repeat(n)),
);

const prefer = fc.oneof(
  fc.constantFrom(
    'respond-async',
    'RESPOND-ASYNC',
    'respond-async, wait=1',
    'respond-async; wait=0',
    'wait=1',
    'wait="1"',
    'wait=',
    'wait=-1',
    'wait=1.5',
    'wait=99999999999',
    'wait="',
    'return=minimal',
    'handling=strict, respond-async',
    ';;;',
    ',,,',
    '=',
    'respond-async=yes',
    'wait=1;wait=2',
  ),
  fc
    .array(
      fc.tuple(
        fc.constantFrom('respond-async', 'wait', 'handling', 'x', ''),
        fc.option(fc.constantFrom('1', '"0"', 'abc', '', '"', '2;q=1')),
      ),
      { maxLength: 4 },
    )
    .chain((parts) =>
      fc
        .constantFrom(', ', ';', ',')
        .map((sep) => parts.map(([name, value]) => (value === null ? name : `${name}=${value}`)).join(sep) || 'x'),
    ),
);

const traceparent = fc.oneof(
  fc.constantFrom(
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra',
    '00-00000000000000000000000000000000-b7ad6b7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
    '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01',
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
    '00--b7ad6b7169203331-01',
    '-',
  ),
  fc
    .tuple(
      fc.stringMatching(/^[0-9a-fA-F]{0,3}$/),
      fc.stringMatching(/^[0-9a-fA-F]{30,34}$/),
      fc.stringMatching(/^[0-9a-fA-Fg]{14,18}$/),
      fc.stringMatching(/^[0-9a-f]{1,3}$/),
    )
    .map((parts) => parts.join('-')),
  safeValue(60),
);

const tracestate = fc.oneof(
  fc.constantFrom('rojo=00f067aa0ba902b7', 'a=1,b=2', '=,=', ',,,,', 'x@y=z', 'a='.repeat(40)),
  fc.array(fc.tuple(safeValue(8), safeValue(8)), { maxLength: 40 }).map((members) => members.map(([k, v]) => `${k}=${v}`).join(',') || 'x'),
);

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=latin1',
  'application/json ; x=y',
  'application/jsonx',
  'application/json-seq',
  'application/problem+json',
  'text/plain',
  'text/json',
  'multipart/form-data; boundary=x',
  'application/cloudevents+json',
  '*/*',
  ';',
);

const timeoutMs = fc.constantFrom(
  '0',
  '1',
  '5',
  '30',
  '1000',
  '-1',
  '1e3',
  '1.5',
  ' 5',
  'abc',
  '99999999999999999999',
  '000000000000001',
  '',
);

/** `value` in about one request of `outOf`: most requests carry a few headers, so most get past the checks to the handler. */
const sometimes = <T>(value: fc.Arbitrary<T>, outOf: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: outOf - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: value });

const headers: fc.Arbitrary<Record<string, string>> = fc
  .record({
    'content-type': fc.oneof(
      { weight: 16, arbitrary: fc.constant('application/json') },
      { weight: 4, arbitrary: contentType },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    'idempotency-key': sometimes(idempotencyKey, 3),
    prefer: sometimes(prefer, 3),
    traceparent: sometimes(traceparent, 2),
    tracestate: sometimes(tracestate, 2),
    'switchboard-timeout-ms': sometimes(timeoutMs, 5),
    'switchboard-callback': sometimes(
      fc.constantFrom('http://127.0.0.1:1/cb', 'https://example.com/hook', 'not a url', 'file:///etc/passwd'),
      8,
    ),
    'if-none-match': sometimes(fc.constantFrom('"1"', '"2"', '*', 'W/"3"', '"', 'x'), 4),
    accept: sometimes(fc.constantFrom('application/json', 'text/event-stream', '*/*', 'application/problem+json'), 4),
    'last-event-id': sometimes(fc.constantFrom('0', '1', '99', '-1', 'x'), 6),
    // Past Node's maxHeaderSize (16 KiB): refused by the parser before any handler.
    'x-padding': sometimes(fc.constantFrom('a'.repeat(8 * 1024), 'a'.repeat(17 * 1024)), 10),
  })
  .map((record) => {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(record)) if (value !== undefined && value !== '') out[name] = value;
    return out;
  });

/** Bodies for operation calls: valid and invalid input, random bytes, invalid UTF-8, deep JSON, huge numbers, over the limit. */
const body: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ name: fc.string({ maxLength: 20 }), n: fc.option(fc.double(), { nil: undefined }) }).map(json) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(json) },
  { weight: 1, arbitrary: fc.record({ ms: fc.integer({ min: 0, max: 20 }), n: fc.integer() }).map(json) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('{"name":"', '"', '['),
        fc.constantFrom([0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff, 0xfe], [0xe2, 0x82]),
        fc.constantFrom('"}', '"', ']'),
      )
      .map(([before, bad, after]) => new Uint8Array([...utf8(before), ...bad, ...utf8(after)])),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(10, 63, 64, 65, 513, 3_000, 20_000),
        fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>,
        fc.boolean(),
      )
      .map(([depth, kind, wrapped]) => utf8(wrapped ? `{"name":"x","n":1,"deep":${deepJson(depth, kind)}}` : deepJson(depth, kind))),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1e400', '-1e400', '123456789012345678901234567890', '1E-400', '-0', `0.${'9'.repeat(500)}`)
      .map((number) => utf8(`{"name":"x","n":${number},"ms":${number}}`)),
  },
  { weight: 1, arbitrary: fc.constantFrom(undefined, new Uint8Array(0), utf8('null'), utf8(' '), utf8('{"name":1}'), utf8('{"name":"x"')) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: BODY_LIMIT - 8, max: BODY_LIMIT + 4096 }).map((size) => utf8(`{"name":"${'a'.repeat(size)}"}`)),
  },
);

const operations = ['echo', 'any', 'fail', 'slow', 'job', 'report'] as const;

const jobPath = fc.oneof(
  fc.tuple(fc.nat(), fc.constantFrom('', '/result', '/x', '/result/')).map(([i, sub]) => `/jobs/${jobIds[i % jobIds.length]}${sub}`),
  fc.stringMatching(/^[A-Za-z0-9_-]{16,64}$/).map((id) => `/jobs/${id}`),
  fc.constantFrom(
    '/jobs/',
    '/jobs',
    '/jobs//result',
    '/jobs/%',
    '/jobs/%zz',
    '/jobs/..%2f..',
    '/jobs/a',
    `/jobs/${'a'.repeat(65)}`,
    '/jobs/%C0%AF',
  ),
  fc.string({ unit: fc.constantFrom(..."abcXYZ019-_~.%/!$&'()*+,;=:@"), maxLength: 70 }).map((id) => `/jobs/${id}`),
);

interface Request {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array | undefined;
  /** Whether the handler of this request may fail (a 5xx is then the handler's, not the caller's). */
  readonly handlerMayFail: boolean;
}

const request: fc.Arbitrary<Request> = fc.oneof(
  // Operation calls.
  {
    weight: 6,
    arbitrary: fc
      .record({
        method: fc.oneof(
          { weight: 8, arbitrary: fc.constant('POST') },
          fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
        ),
        operation: fc.constantFrom(...operations),
        query: fc.constantFrom('', '', '', '?x=1', '?', '?wait=1', '?%zz'),
        headers,
        valid: fc.boolean(),
        validInput: fc.record({ name: fc.string({ maxLength: 20 }), n: fc.integer(), ms: fc.integer({ min: 0, max: 20 }) }),
        body,
      })
      .map(({ operation, valid, validInput, body: b, ...rest }) => ({
        ...rest,
        operation,
        // Half the calls carry an input their operation takes, so they reach the handler.
        body: valid ? json(operation === 'any' ? validInput.name : validInput) : b,
      }))
      .map(({ method, operation: name, query, headers: h, body: b }) => ({
        method,
        path: `/ops/${name}${query}`,
        headers: h,
        body: method === 'GET' || method === 'HEAD' ? undefined : b,
        handlerMayFail: name === 'fail',
      })),
  },
  // The status monitor.
  {
    weight: 3,
    arbitrary: fc
      .record({
        method: fc.constantFrom('GET', 'GET', 'HEAD', 'DELETE', 'POST', 'PUT'),
        path: jobPath,
        query: fc.constantFrom('', '?wait=1', '?wait=abc', '?wait=-5'),
        headers,
      })
      .map(({ method, path, query, headers: h }) => ({
        method,
        path: `${path}${query}`,
        headers: h,
        body: undefined,
        handlerMayFail: false,
      })),
  },
  // Everything else.
  {
    weight: 1,
    arbitrary: fc
      .record({
        method: fc.constantFrom('GET', 'POST', 'DELETE', 'OPTIONS', 'PROPFIND', 'FOO'),
        path: fc.oneof(
          fc.constantFrom(
            '/',
            '/healthz',
            '/readyz',
            '/healthz/',
            '/ops',
            '/ops/',
            '/ops/unknown',
            '/OPS/echo',
            '/ops/echo/',
            '/ops/%65cho',
            '/%',
            '//',
            '/..',
            '/ops/..%2fecho',
            '/ops/%00',
          ),
          fc.string({ unit: fc.constantFrom(...'abc/%.-_~019'), maxLength: 40 }).map((p) => `/${p}`),
        ),
        headers,
        body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
      })
      .map(({ method, path, headers: h, body: b }) => ({
        method,
        path,
        headers: h,
        body: method === 'GET' ? undefined : b,
        handlerMayFail: false,
      })),
  },
);

function sanitizeForSse(req: Request): Request {
  // An event stream of a job that is still queued stays open until it finishes (long, by design):
  // ask for it only on the jobs that exist (they finish at once).
  if (req.headers.accept !== 'text/event-stream') return req;
  if (jobIds.some((id) => req.path.startsWith(`/jobs/${id}`))) return req;
  const { accept: _accept, ...rest } = req.headers;
  return { ...req, headers: rest };
}

describe('fuzz: the HTTP server over loopback', () => {
  it('answers every request precisely: no 5xx for the caller, problem+json for every error, nothing stuck, still healthy', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 3 }), async (requests) => {
        const answers = await Promise.all(
          requests.map(sanitizeForSse).map(async (req) => ({ req, answer: await send(req.method, req.path, req.headers, req.body) })),
        );
        for (const { answer } of answers) {
          // Jobs submitted by the fuzzer join the ones the monitor routes are asked about.
          if (answer.status === 202 && jobIds.length < 64) {
            const { id, operation: name } = JSON.parse(answer.body) as { id?: unknown; operation?: unknown };
            if (typeof id === 'string') jobIds.push(id);
            // The result of a job whose handler failed is that failure (500), told again.
            if (typeof id === 'string' && name === 'fail') failingJobs.add(id);
          }
        }
        for (const { req, answer } of answers) {
          const violations = answerViolations(answer, known, {
            serverErrorAllowed: req.handlerMayFail || [...failingJobs].some((id) => req.path.startsWith(`/jobs/${id}`)),
            // A deadline the caller set itself (Switchboard-Timeout-Ms) may pass: 504, as the protocol says.
            serverErrorCodes: req.headers['switchboard-timeout-ms'] === undefined ? [] : ['SB_DEADLINE_EXCEEDED'],
            declaredCodes: ['Refused'],
            secrets: [SECRET],
          });
          expect(
            violations,
            `${req.method} ${req.path} ${JSON.stringify(req.headers)} → ${answer.status} ${answer.body.slice(0, 300)}: ${violations.join('; ')}`,
          ).toEqual([]);
        }
        // W3C Trace Context: a valid parent is continued (same trace id and known flags, a new span
        // id) with its tracestate normalized (invalid lists dropped); anything else starts a new
        // trace, and its tracestate is dropped.
        reachedHandlers += traces.length;
        for (const trace of traces.splice(0)) {
          const own = parseTraceparent(trace.traceparent);
          expect(own, JSON.stringify(trace)).toBeDefined();
          const parent = parseTraceparent(trace.incoming);
          if (parent === undefined) {
            expect(trace.tracestate, JSON.stringify(trace)).toBeUndefined();
          } else {
            expect([own?.traceId, own?.flags, trace.tracestate]).toEqual([
              parent.traceId,
              parent.flags,
              normalizeTracestate(trace.incomingState),
            ]);
            expect(own?.parentId).not.toBe(parent.parentId);
          }
        }
        expect(service.inFlight).toBe(0);
        const health = await send('GET', '/healthz', {});
        expect(health.status).toBe(200);
      }),
      fuzzParameters(300),
    );
    // The fuzzer must get past the checks: a good share of the calls reached a handler over HTTP.
    expect(reachedHandlers).toBeGreaterThan(fuzzParameters(300).numRuns / 6);
  });
});

/** What a plain operation call must answer for a body, worked out without the server. */
function expectedForBody(bytes: Uint8Array): { status: number; code?: string; echo?: unknown } {
  if (bytes.byteLength > BODY_LIMIT) return { status: 413, code: 'SB_BODY_TOO_LARGE' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { status: 400, code: 'SB_MALFORMED_JSON' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { status: 400, code: 'SB_MALFORMED_JSON' };
  }
  if (depthOf(value) > DEFAULT_MAX_JSON_DEPTH) return { status: 400, code: 'SB_JSON_TOO_DEEP' };
  // JSON cannot hold what JavaScript parsed 1e400 into (Infinity): it comes back as null.
  return { status: 200, echo: JSON.parse(JSON.stringify(value) ?? 'null') };
}

/** Nesting depth of a parsed JSON value (iterative: the values may be deeper than the stack). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}

let keyRun = 0;

describe('fuzz: Idempotency-Key, answer by answer', () => {
  it('the same key and body replay the first answer, another body is 422, a key over 255 characters is 400', async () => {
    await fc.assert(
      fc.asyncProperty(safeValue(300), fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), async (key, first, second) => {
        // Keys of different runs must not meet: a prefix per run (the fuzzed part follows it).
        const scoped = `${++keyRun}.${key}`;
        const headers = { 'content-type': 'application/json', 'idempotency-key': scoped };
        const a = await send('POST', '/ops/echo', headers, json({ name: first }));
        const b = await send('POST', '/ops/echo', headers, json({ name: first }));
        const other = `${second}!` === first ? `${second}!!` : `${second}!`;
        const c = await send('POST', '/ops/echo', headers, json({ name: other }));
        if (scoped.length > 255) {
          for (const answer of [a, b, c]) expect(JSON.parse(answer.body)).toMatchObject({ status: 400, code: 'SB_BAD_REQUEST' });
          return;
        }
        expect([a.status, JSON.parse(a.body)]).toEqual([200, { name: first }]);
        expect([b.status, b.body, b.headers['idempotent-replayed']]).toEqual([200, a.body, 'true']);
        expect([c.status, (JSON.parse(c.body) as { code: string }).code]).toEqual([422, 'SB_IDEMPOTENCY_KEY_REUSED']);
      }),
      fuzzParameters(150),
    );
  });
});

describe('fuzz: operation bodies, answer by answer', () => {
  it('a body is answered as its bytes deserve: 413, 400 SB_MALFORMED_JSON (not JSON, not UTF-8), 400 SB_JSON_TOO_DEEP, or the value itself', async () => {
    await fc.assert(
      fc.asyncProperty(
        body.filter((b) => b !== undefined),
        async (bytes) => {
          const expected = expectedForBody(bytes);
          const answer = await send('POST', '/ops/any', { 'content-type': 'application/json' }, bytes);
          const shown = `${answer.status} ${answer.body.slice(0, 200)}`;
          expect(answer.status, shown).toBe(expected.status);
          if (expected.code !== undefined) expect((JSON.parse(answer.body) as { code: string }).code, shown).toBe(expected.code);
          else expect(JSON.parse(answer.body), shown).toStrictEqual(expected.echo);
        },
      ),
      fuzzParameters(300),
    );
  });
});

/** Sends raw bytes on a fresh connection and reads until the server closes it. */
async function rawExchange(url: string, ...requests: string[]): Promise<string> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  let received = '';
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1');
  });
  for (const request of requests) {
    socket.write(request);
    // One request at a time, so an earlier answer is complete before the next one is refused.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await closed;
  return received;
}

describe('fuzz findings, one regression test each', () => {
  it('invalid UTF-8 in an operation body is 400 SB_MALFORMED_JSON, not a call with U+FFFD', async () => {
    const answer = await send('POST', '/ops/any', { 'content-type': 'application/json' }, new Uint8Array([0x22, 0xc0, 0xaf, 0x22]));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'SB_MALFORMED_JSON', detail: 'The request body is not valid UTF-8' });
  });

  it('a tracestate is dropped with the traceparent it belongs to, when that one is not valid (W3C Trace Context)', async () => {
    // The handler's context kept the raw tracestate under a new trace, and a job or a client call
    // continuing that trace passed it on.
    for (const [incoming, kept] of [
      ['garbage', false],
      ['00-00000000000000000000000000000000-b7ad6b7169203331-01', false],
      ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', true],
    ] as const) {
      const answer = await send(
        'POST',
        '/ops/echo',
        { 'content-type': 'application/json', traceparent: incoming, tracestate: 'rojo=00f067aa0ba902b7' },
        json({ name: 'trace' }),
      );
      expect(answer.status).toBe(200);
      const [trace] = traces.splice(0);
      expect(trace?.tracestate).toBe(kept ? 'rojo=00f067aa0ba902b7' : undefined);
      expect(parseTraceparent(trace?.traceparent)?.traceId === parseTraceparent(incoming)?.traceId).toBe(kept);
    }
  });

  it('an operation body nested deeper than maxJsonDepth (default 64) is 400 SB_JSON_TOO_DEEP, not a 200 with null', async () => {
    const deep = await send(
      'POST',
      '/ops/any',
      { 'content-type': 'application/json' },
      utf8(deepJson(DEFAULT_MAX_JSON_DEPTH + 1, 'array')),
    );
    expect(deep.status).toBe(400);
    expect(JSON.parse(deep.body)).toMatchObject({ code: 'SB_JSON_TOO_DEEP', status: 400 });
    const deepest = await send(
      'POST',
      '/ops/any',
      { 'content-type': 'application/json' },
      utf8(deepJson(DEFAULT_MAX_JSON_DEPTH, 'object')),
    );
    expect(deepest.status).toBe(200);
    expect(deepest.body).toBe(deepJson(DEFAULT_MAX_JSON_DEPTH, 'object'));
  });

  it("requests Node's parser refuses are answered with a problem document, also on a kept-alive connection", async () => {
    // Node answered these itself, with an empty body, and not at all after an earlier answer on the connection.
    const health = 'GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n';
    for (const [requests, status, code] of [
      [['FOO / HTTP/1.1\r\nhost: x\r\n\r\n'], 400, 'SB_BAD_REQUEST'],
      [[health, 'FOO / HTTP/1.1\r\nhost: x\r\n\r\n'], 400, 'SB_BAD_REQUEST'],
      [[health, 'GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n'], 400, 'SB_BAD_REQUEST'],
      [[`GET / HTTP/1.1\r\nhost: x\r\nx-padding: ${'a'.repeat(17 * 1024)}\r\n\r\n`], 431, 'SB_HEADERS_TOO_LARGE'],
    ] as const) {
      const received = await rawExchange(serverUrl, ...requests);
      const last = received.slice(received.lastIndexOf('HTTP/1.1 '));
      expect(last.startsWith(`HTTP/1.1 ${status} `), received).toBe(true);
      expect(last).toContain('content-type: application/problem+json');
      expect(JSON.parse(last.slice(last.indexOf('\r\n\r\n') + 4))).toMatchObject({ status, code });
    }
  });
});
