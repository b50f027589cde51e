/**
 * Fuzzing the HTTP routes of `messaging.routes()` over real loopback sockets: `POST /events` (the
 * CloudEvents HTTP binding, binary, structured and batched) with whatever a sender can put in headers
 * and body, and `GET /receipts/{id}` with any id, source, group and wait. Properties: no 5xx unless a
 * handler failed; every error is `application/problem+json` with a registry code and nothing of
 * what the handler's own exception said; nothing is left in flight; the server keeps answering.
 */

import type { CloudEvent } from '@switchboard/core';
import { cloudEventsBindings, cloudEventToHttp, encodeBatch, errorRegistry, PermanentError } from '@switchboard/core';
import type { HttpService } from '@switchboard/http';
import { createHttpService } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import type { Messaging } from '@switchboard/messaging';
import { createMessaging } from '@switchboard/messaging';
import {
  answerViolations,
  attributeString,
  deepJson,
  type FuzzAnswer,
  type FuzzHeaders,
  fuzzParameters,
  hostileMessage,
  timestamp,
} from '@switchboard/testkit';
import fc from 'fast-check';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceA, serviceB } from './harness.js';

const SECRET = 'secret-upstream http://db.internal:5432';
const BODY_LIMIT = 64 * 1024;
const known = new Set(Object.keys(errorRegistry));

let messaging: Messaging;
let http: HttpService;
let client: Client;
const broker = createMemoryBroker({ drainTimeoutMs: 200 });
const receipts = createMemoryReceiptStore();
const deadLetters = createMemoryDeadLetterStore();
/** (source, id) of events the server answered, for the receipts route. */
const posted: { readonly id: string; readonly source: string }[] = [];
/** `/events` answers that took the event (204, or 200 for a batch). */
let taken = 0;

beforeAll(async () => {
  messaging = createMessaging({
    broker,
    service: 'service-b',
    receipts,
    deadLetters,
    retry: { maxAttempts: 2, backoff: { baseMs: 1, maxMs: 2 } },
    handlerTimeoutMs: 2_000,
  });
  messaging.handle(serviceB, 'name.submitted', (data) => {
    // Names that make the handler fail: the only events allowed a 5xx answer.
    if (data.name === 'boom') throw new Error(SECRET);
    if (data.name === 'perm') throw new PermanentError(SECRET);
  });
  messaging.on(serviceA, 'name.processed', () => {});
  messaging.on(serviceA, 'picture.resized', () => {});
  await messaging.start();
  http = createHttpService({
    contract: serviceB,
    handlers: { save: () => ({ id: '1' }) },
    routes: messaging.routes(),
    bodyLimit: BODY_LIMIT,
  });
  const { url } = await http.listen();
  client = new Client(url, { pipelining: 1 });
});

afterAll(async () => {
  await client?.close();
  await http?.close({ timeoutMs: 1_000 });
  await messaging?.close();
  await broker.close();
  await receipts.close();
  await deadLetters.close();
});

async function send(method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<FuzzAnswer> {
  const response = await client.request({ method, path, headers, ...(body === undefined ? {} : { body }) });
  return { method, status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * The headers as an HTTP client can send them: names that are tokens, values without control
 * characters, everything past ASCII sent as its raw UTF-8 bytes (what a careless client does), and
 * the connection-level headers left to the client.
 */
function onTheWire(headers: FuzzHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (
      !TOKEN.test(name) ||
      ['content-length', 'transfer-encoding', 'connection', 'host', 'expect', 'upgrade', 'keep-alive', 'te'].includes(lower)
    )
      continue;
    const joined = typeof raw === 'string' ? raw : raw.join(', ');
    // What an HTTP client may send: tab, printable ASCII and bytes 0x80-0xFF (obs-text).
    const value = Buffer.from(joined, 'utf8')
      .toString('latin1')
      .replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
    if (value.length > 4096) continue;
    out[lower in out ? name : lower] = value;
  }
  return out;
}

/** Events of the types the service handles (and some it does not), with data that passes its schema or not. */
const routedEvent: fc.Arbitrary<CloudEvent> = fc
  .record(
    {
      id: attributeString,
      source: fc.constantFrom('curl', '/fuzz', 'service-a', 'https://example.com/x'),
      type: fc.constantFrom(
        'service-b.name.submitted',
        'service-b.name.submitted',
        'service-a.name.processed',
        'service-a.name.processed',
        'service-a.picture.resized',
        'service-b.save',
        'service-z.other',
      ),
      time: timestamp,
      data: fc.oneof(
        { weight: 4, arbitrary: fc.record({ name: fc.constantFrom('ada', 'grace', 'boom', 'perm', '') }) },
        fc.record({ name: fc.string({ maxLength: 8 }), count: fc.oneof(fc.integer(), fc.double()) }),
        fc.record({ width: fc.oneof(fc.integer(), fc.string()) }),
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom(600, 513, 512).map((depth) => JSON.parse(deepJson(depth - 1, 'array')) as unknown),
      ),
      subject: attributeString,
      // Text and bytes in media types and charsets a binary binding may not be able to write again.
      text: fc.oneof(
        { weight: 5, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc.record({
            datacontenttype: fc.constantFrom(
              'text/plain',
              'text/plain; charset=utf-16le',
              'text/plain; charset=windows-1252',
              'text/plain; charset=us-ascii',
              'application/octet-stream',
            ),
            data: fc.string({ maxLength: 8 }),
          }),
        },
      ),
    },
    { requiredKeys: ['id', 'source', 'type', 'data', 'text'] },
  )
  .map((p) => {
    const event: Record<string, unknown> = { specversion: '1.0', id: p.id, source: p.source, type: p.type };
    if (p.time !== undefined) event.time = p.time;
    if (p.subject !== undefined) event.subject = p.subject;
    if (p.text !== undefined) {
      event.datacontenttype = p.text.datacontenttype;
      event.data = p.text.datacontenttype === 'application/octet-stream' ? new Uint8Array(Buffer.from(p.text.data)) : p.text.data;
    } else if (p.data !== undefined) {
      event.datacontenttype = 'application/json';
      event.data = p.data;
    }
    return event as unknown as CloudEvent;
  });

interface EventsRequest {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
  /** A handler of one of its events fails (`boom`, `perm`): a 5xx is then the handler's. */
  readonly handlerMayFail: boolean;
}

function failing(events: readonly CloudEvent[]): boolean {
  return events.some((event) => {
    const name = (event.data as { name?: unknown } | undefined)?.name;
    return name === 'boom' || name === 'perm';
  });
}

const eventsRequest: fc.Arbitrary<EventsRequest> = fc.oneof(
  // Whatever a sender can put together.
  {
    weight: 2,
    arbitrary: hostileMessage(cloudEventsBindings.http).map(({ headers, body }) => ({
      headers: onTheWire(headers),
      body,
      // A hostile message may still be a valid event of a handled type whose data says boom.
      handlerMayFail: Buffer.from(body).includes('boom') || Buffer.from(body).includes('perm'),
    })),
  },
  // Events the pipeline handles, in each mode.
  {
    weight: 3,
    arbitrary: fc
      .tuple(routedEvent, fc.constantFrom('binary', 'structured') as fc.Arbitrary<'binary' | 'structured'>)
      .map(([event, mode]) => {
        let encoded: { headers: Record<string, string>; body: Uint8Array };
        try {
          encoded = cloudEventToHttp(event, { mode });
        } catch {
          // Text binary mode cannot write in its charset travels structured.
          encoded = cloudEventToHttp(event, { mode: 'structured' });
        }
        const { headers, body } = encoded;
        return { headers, body, handlerMayFail: failing([event]) };
      }),
  },
  {
    weight: 1,
    arbitrary: fc.array(routedEvent, { maxLength: 4 }).map((events) => {
      const { headers, body } = encodeBatch(events);
      return { headers, body, handlerMayFail: failing(events) };
    }),
  },
);

/** The identity the answer is about, to ask for its receipt later. */
function remember(request: EventsRequest): void {
  try {
    const id = request.headers['ce-id'];
    const source = request.headers['ce-source'];
    if (id !== undefined && source !== undefined) posted.push({ id: decodeURIComponent(id), source: decodeURIComponent(source) });
    else {
      const parsed = JSON.parse(Buffer.from(request.body).toString('utf8')) as unknown;
      for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
        const { id: i, source: s } = item as { id?: unknown; source?: unknown };
        if (typeof i === 'string' && typeof s === 'string') posted.push({ id: i, source: s });
      }
    }
  } catch {
    // Not an event we can name: nothing to ask about.
  }
  if (posted.length > 200) posted.splice(0, posted.length - 200);
}

const receiptPath = fc.oneof(
  fc.tuple(fc.nat(), fc.boolean()).map(([i, withSource]) => {
    const known = posted[i % Math.max(1, posted.length)];
    if (known === undefined) return '/receipts/none';
    return `/receipts/${encodeURIComponent(known.id)}${withSource ? `?source=${encodeURIComponent(known.source)}` : ''}`;
  }),
  fc.constantFrom(
    '/receipts/',
    '/receipts',
    '/receipts/%',
    '/receipts/%zz',
    '/receipts/a/b',
    '/receipts/%2F',
    '/receipts/%C0%AF',
    '/receipts/x?source=',
    '/receipts/x?source=%zz',
  ),
  fc
    .tuple(
      fc.string({ unit: fc.constantFrom(..."abc019-_.~%!$&'()*+,;=:@"), maxLength: 600 }),
      fc.constantFrom(
        '',
        '?wait=0',
        '?wait=0.01',
        '?wait=abc',
        '?wait=-1',
        '?wait=NaN',
        '?wait=Infinity',
        '?group=x',
        '?group=service-b&wait=0.01',
        '?source=curl',
        '?source=a&source=b',
      ),
    )
    .map(([id, query]) => `/receipts/${id}${query}`),
);

describe('fuzz: CloudEvents and receipts over HTTP (messaging.routes())', () => {
  it('POST /events answers every message precisely, and GET /receipts/{id} every id', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventsRequest,
        receiptPath,
        fc.constantFrom('POST', 'POST', 'POST', 'POST', 'POST', 'POST', 'PUT', 'GET'),
        async (request, path, method) => {
          const answer = await send(method, '/events', request.headers, method === 'GET' ? undefined : request.body);
          const shown = `${method} /events ${JSON.stringify(request.headers).slice(0, 400)} → ${answer.status} ${answer.body.slice(0, 300)}`;
          const violations = answerViolations(answer, known, { serverErrorAllowed: request.handlerMayFail, secrets: [SECRET] });
          expect(violations, `${shown}: ${violations.join('; ')}`).toEqual([]);
          if (answer.status === 200) expect(Array.isArray((JSON.parse(answer.body) as { results: unknown }).results)).toBe(true);
          if (answer.status < 500) remember(request);
          if (answer.status === 204 || answer.status === 200) taken++;

          const receipt = await send('GET', path, {});
          const receiptViolations = answerViolations(receipt, known, { secrets: [SECRET] });
          expect(
            receiptViolations,
            `GET ${path} → ${receipt.status} ${receipt.body.slice(0, 300)}: ${receiptViolations.join('; ')}`,
          ).toEqual([]);
          expect([200, 400, 404, 409]).toContain(receipt.status);

          expect(http.inFlight).toBe(0);
          expect((await send('GET', '/healthz', {})).status).toBe(200);
        },
      ),
      fuzzParameters(300),
    );
    // The fuzzer must get events through, not only refusals.
    expect(taken).toBeGreaterThan(fuzzParameters(300).numRuns / 6);
  });
});

describe('fuzz findings, one regression test each', () => {
  const post = (headers: Record<string, string>, body: Uint8Array | string) =>
    send('POST', '/events', headers, typeof body === 'string' ? new Uint8Array(Buffer.from(body)) : body);

  it("a PermanentError's message is not told to the sender, in the /events answer or in the receipt", async () => {
    const event: CloudEvent = {
      specversion: '1.0',
      id: `perm-${Date.now()}`,
      source: 'curl',
      type: 'service-b.name.submitted',
      datacontenttype: 'application/json',
      data: { name: 'perm' },
    };
    const { headers, body } = cloudEventToHttp(event);
    const answer = await post(headers, body);
    expect(answer.status).toBe(500);
    expect(answer.body).not.toContain(SECRET);
    expect(JSON.parse(answer.body)).toMatchObject({
      code: 'SB_PERMANENT',
      detail: 'the handler refused the event for good; it was dead-lettered',
    });
    const receipt = await send('GET', `/receipts/${event.id}?source=curl`, {});
    expect(receipt.status).toBe(200);
    expect(receipt.body).not.toContain(SECRET);
    expect(JSON.parse(receipt.body)).toMatchObject({ groups: [{ state: 'dead-lettered', error: { code: 'SB_PERMANENT' } }] });
    // The service itself still sees what its handler said.
    expect((await messaging.receipts.get(event.id, { source: 'curl' }))?.groups[0]?.error?.detail).toContain(SECRET);
  });

  it("a handler exception's message is not in GET /receipts/{id}", async () => {
    const event: CloudEvent = {
      specversion: '1.0',
      id: `boom-${Date.now()}`,
      source: 'curl',
      type: 'service-b.name.submitted',
      datacontenttype: 'application/json',
      data: { name: 'boom' },
    };
    const { headers, body } = cloudEventToHttp(event);
    expect((await post(headers, body)).status).toBe(503);
    const receipt = await send('GET', `/receipts/${event.id}?source=curl`, {});
    expect(receipt.body).not.toContain(SECRET);
    expect(JSON.parse(receipt.body)).toMatchObject({ groups: [{ error: { code: 'SB_HANDLER_FAILED' } }] });
  });

  it('a structured event with deeply nested data is 400 SB_JSON_TOO_DEEP, not 500 SB_INTERNAL', async () => {
    const answer = await post(
      { 'content-type': 'application/cloudevents+json' },
      `{"specversion":"1.0","id":"deep","source":"curl","type":"service-b.name.submitted","data":${deepJson(5_000, 'array')}}`,
    );
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'SB_JSON_TOO_DEEP' });
  });

  it('an event no binary binding can write (text in UTF-16) is dead-lettered as received, not retried forever', async () => {
    const id = `utf16-${Date.now()}`;
    const answer = await post(
      { 'content-type': 'application/cloudevents+json' },
      JSON.stringify({
        specversion: '1.0',
        id,
        source: 'curl',
        type: 'service-z.unknown',
        datacontenttype: 'text/plain; charset=utf-16le',
        data: 'hi',
      }),
    );
    expect(answer.status, answer.body).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'SB_UNKNOWN_TYPE' });
    const [entry] = (await messaging.deadLetters.list({ messageId: id })).items;
    expect(entry).toMatchObject({ reason: 'unknown-type', source: 'curl' });
  });

  it('an event another request is processing is 503 with the registry type of SB_OVERLOADED, not about:blank', async () => {
    const id = `held-${Date.now()}`;
    await receipts.claim({ group: 'service-b', source: 'curl', messageId: id, owner: 'elsewhere', leaseMs: 60_000 });
    const { headers, body } = cloudEventToHttp({
      specversion: '1.0',
      id,
      source: 'curl',
      type: 'service-b.name.submitted',
      datacontenttype: 'application/json',
      data: { name: 'ada' },
    });
    const answer = await post(headers, body);
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(JSON.parse(answer.body)).toMatchObject({ type: 'urn:switchboard:error:overloaded', code: 'SB_OVERLOADED', status: 503 });
  });
});
