/**
 * Fuzzing the CloudEvents codec: whatever arrives — over HTTP (binary, structured, batched) or
 * through any broker binding — decoding either yields valid events in the canonical in-memory form,
 * which every binding can write again, or throws a `SwitchboardError` with one of the codes the
 * decoders document. Never another exception, never a hang. And every valid event, written in any
 * binding and mode, reads back as the same event.
 *
 * Bounded and seeded in the fast tier; `npm run fuzz` runs the same properties longer with a random
 * seed (see docs/security.md, "Fuzzing").
 */

import type { CloudEvent, CloudEventsBinding, CloudEventsMode, DecodeOptions, EncodedCloudEvent } from '@switchboard/core';
import {
  canonicalEvent,
  cloudEventFromHttp,
  cloudEventsBindings,
  cloudEventToHttp,
  decodeBatch,
  decodeCloudEvent,
  decodeStructured,
  encodeBatch,
  encodeBinary,
  encodeCloudEvent,
  isSwitchboardError,
  JSON_MAX_DEPTH,
  validateCloudEvent,
  withMode,
} from '@switchboard/core';
import { dataKind, jsonNestsDeeperThan, parseMediaType } from '@switchboard/core/kit';
import { flatHeaders, fuzzParameters, hostileMessage, validCloudEvent } from '@switchboard/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const bindings = Object.values(cloudEventsBindings) as CloudEventsBinding[];
const modes: readonly CloudEventsMode[] = ['binary', 'structured'];

/** What the decoders may throw: a message that is not a CloudEvent, not JSON (or too deep), or not in a media type we read. */
const DECODE_CODES = ['SB_NOT_CLOUDEVENT', 'SB_MALFORMED_JSON', 'SB_JSON_TOO_DEEP', 'SB_UNSUPPORTED_MEDIA_TYPE'];

/** The error is one the decoders document, with a problem document that serialises and field errors that point somewhere. */
function expectDocumentedRefusal(error: unknown): void {
  if (!isSwitchboardError(error)) throw error;
  expect(DECODE_CODES).toContain(error.code);
  const problem = JSON.parse(JSON.stringify(error.toProblem())) as { code: string; status: number; errors?: unknown[] };
  expect(problem.code).toBe(error.code);
  expect([400, 415]).toContain(problem.status);
  if (error.code === 'SB_NOT_CLOUDEVENT') {
    expect(error.errors?.length).toBeGreaterThan(0);
    for (const field of error.errors ?? []) {
      expect(typeof field.pointer).toBe('string');
      expect(typeof field.message).toBe('string');
    }
  }
}

/** `data` in the form the decoders promise for its media type (see `CloudEvent.data`). */
function expectCanonicalData(event: CloudEvent): void {
  if (event.data === undefined || event.data instanceof Uint8Array) return;
  const kind = dataKind(event.datacontenttype);
  if (kind === 'text') expect(typeof event.data).toBe('string');
  else expect(kind).toBe('json');
}

/**
 * The event as binary mode carries it: JSON data without a `datacontenttype` travels as
 * `application/json` (the JSON format's default made explicit), so that is how it reads back.
 */
function explicit(event: CloudEvent): CloudEvent {
  if (event.datacontenttype !== undefined || event.data === undefined || event.data instanceof Uint8Array) return event;
  return { ...event, datacontenttype: 'application/json' };
}

/**
 * Text in a charset other than UTF-8 can be carried in structured mode (as a JSON string) but
 * written in binary mode only when that charset can encode it (UTF-8, US-ASCII, ISO-8859-1):
 * binary mode refuses the rest with `SB_NOT_CLOUDEVENT` at `/data`, as documented.
 */
function textInOtherCharset(event: CloudEvent): boolean {
  if (typeof event.data !== 'string' || dataKind(event.datacontenttype) !== 'text') return false;
  const charset = parseMediaType(event.datacontenttype ?? '')?.charset;
  return charset !== undefined && charset !== 'utf-8' && charset !== 'utf8';
}

/**
 * A decoded event is valid, canonical, and can travel on: every binding writes it in structured
 * mode and, unless it is text in another charset, in binary mode, and reading that back (with the
 * same options) gives the same event (compared in the canonical form a signature covers, since
 * Integer and Boolean extensions come back as strings from binary mode without their types). With
 * `rawData` the data stays the received bytes, so only the writing is checked.
 */
function expectUsableEvent(event: CloudEvent, options?: DecodeOptions): void {
  expect(validateCloudEvent(event)).toEqual([]);
  if (options?.rawData !== true) expectCanonicalData(event);
  const canonical = canonicalEvent(explicit(event));
  for (const binding of bindings) {
    for (const mode of modes) {
      let encoded: EncodedCloudEvent;
      try {
        encoded = encodeCloudEvent(event, binding, mode);
      } catch (error) {
        expect(mode === 'binary' && textInOtherCharset(event)).toBe(true);
        expect(isSwitchboardError(error, 'SB_NOT_CLOUDEVENT') && error.errors?.[0]?.pointer).toBe('/data');
        continue;
      }
      const again = decodeCloudEvent(encoded.headers, encoded.body, binding, options);
      if (options?.rawData !== true) expect(canonicalEvent(explicit(again))).toBe(canonical);
    }
  }
}

function decodesOrRefuses(decode: () => CloudEvent | readonly CloudEvent[], options?: DecodeOptions): 'decoded' | 'refused' {
  let decoded: CloudEvent | readonly CloudEvent[];
  try {
    decoded = decode();
  } catch (error) {
    expectDocumentedRefusal(error);
    return 'refused';
  }
  for (const event of Array.isArray(decoded) ? decoded : [decoded as CloudEvent]) expectUsableEvent(event, options);
  return 'decoded';
}

describe('fuzz: decoding what a broker delivers', () => {
  // A binding written in the other mode (core NATS sends structured events) reads the same messages.
  for (const binding of bindings.flatMap((b) => modes.map((mode) => withMode(b, mode)))) {
    it(`decodeCloudEvent on the ${binding.name} binding (${binding.mode} mode) yields a usable event or a documented error`, () => {
      let decoded = 0;
      fc.assert(
        fc.property(hostileMessage(binding), fc.boolean(), ({ headers, body }, raw) => {
          const options = raw ? { rawData: true } : undefined;
          if (decodesOrRefuses(() => decodeCloudEvent(flatHeaders(headers), body, binding, options), options) === 'decoded') decoded++;
        }),
        fuzzParameters(150),
      );
      // Both sides are exercised: a good share of the messages still decode after their mutations.
      expect(decoded).toBeGreaterThan(fuzzParameters(150).numRuns / 10);
    });
  }

  it('reads headers given as arrays (node joins repeated headers) the same way', () => {
    fc.assert(
      fc.property(fc.constantFrom(...bindings), hostileMessage(cloudEventsBindings.http), (binding, { headers, body }) => {
        decodesOrRefuses(() => decodeCloudEvent(headers, body, binding));
      }),
      fuzzParameters(200),
    );
  });
});

describe('fuzz: decoding an HTTP request (cloudEventFromHttp)', () => {
  it('binary, structured and batched mode, from a header record or a Fetch Headers object', () => {
    fc.assert(
      fc.property(hostileMessage(cloudEventsBindings.http), fc.boolean(), ({ headers, body }, asFetchHeaders) => {
        let input: Record<string, string | string[]> | Headers = headers;
        if (asFetchHeaders) {
          const fetchHeaders = new Headers();
          for (const [name, value] of Object.entries(flatHeaders(headers))) {
            try {
              fetchHeaders.append(name, value);
            } catch {
              // Not a legal HTTP header (fetch refuses it): a server never sees it either.
            }
          }
          input = fetchHeaders;
        }
        decodesOrRefuses(() => {
          const decoded = cloudEventFromHttp(input, body);
          return decoded.mode === 'batch' ? decoded.events : decoded.event;
        });
      }),
      fuzzParameters(300),
    );
  });
});

describe('fuzz: every valid event survives every binding and mode', () => {
  it('encodeCloudEvent then decodeCloudEvent gives the same event, on each binding in each mode', () => {
    fc.assert(
      fc.property(validCloudEvent, fc.constantFrom(...bindings), fc.constantFrom(...modes), ({ event, extensionTypes }, binding, mode) => {
        const { headers, body } = encodeCloudEvent(event, binding, mode);
        const decoded = decodeCloudEvent(headers, body, binding, { extensionTypes });
        expect(decoded).toStrictEqual(mode === 'binary' ? explicit(event) : event);
      }),
      fuzzParameters(600),
    );
  });

  it('over HTTP in binary, structured and batched mode', () => {
    fc.assert(
      fc.property(fc.array(validCloudEvent, { minLength: 1, maxLength: 4 }), (samples) => {
        const events = samples.map((s) => s.event);
        const { extensionTypes } = samples[0]!;
        for (const asked of modes) {
          const { headers, body } = cloudEventToHttp(events[0]!, { mode: asked });
          // An event carrying an event goes in structured mode, whatever was asked.
          const mode = events[0]!.datacontenttype?.startsWith('application/cloudevents') ? 'structured' : asked;
          const event = mode === 'binary' ? explicit(events[0]!) : events[0];
          expect(cloudEventFromHttp(headers, body, { extensionTypes })).toStrictEqual({ mode, event });
        }
        const batch = encodeBatch(events);
        const decoded = cloudEventFromHttp(batch.headers, batch.body);
        // A batch holds the same events; two events may use one extension name with different
        // types, so compare each event by what a signature covers (values in their string form).
        expect(decoded.mode).toBe('batch');
        if (decoded.mode === 'batch') expect(decoded.events.map(canonicalEvent)).toEqual(events.map(canonicalEvent));
      }),
      fuzzParameters(300),
    );
  });
});

describe('fuzz findings, one regression test each', () => {
  const base = { specversion: '1.0', id: 'e1', source: '/fuzz', type: 'com.example.fuzz' } as const;
  const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const refusal = (decode: () => unknown): { code: string; pointer: string | undefined } => {
    try {
      decode();
    } catch (error) {
      if (!isSwitchboardError(error)) throw error;
      return { code: error.code, pointer: error.errors?.[0]?.pointer };
    }
    throw new Error('decoded');
  };

  it('data nested deeper than JSON_MAX_DEPTH is refused with SB_JSON_TOO_DEEP in every mode, at the same depth', () => {
    // It used to decode, and then every JSON.stringify of the event (re-encoding it, a dead letter,
    // a signature, the /events answer) overflowed the stack: a 500 over HTTP.
    expect(JSON_MAX_DEPTH).toBe(512);
    for (const [depth, accepted] of [
      [JSON_MAX_DEPTH, true],
      [JSON_MAX_DEPTH + 1, false],
      [50_000, false],
    ] as const) {
      const data = nested(depth);
      const binary = () =>
        decodeCloudEvent(
          { 'ce-specversion': '1.0', 'ce-id': 'e1', 'ce-source': '/s', 'ce-type': 't', 'content-type': 'application/json' },
          utf8(data),
          cloudEventsBindings.http,
        );
      const structured = () => decodeStructured(utf8(`{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":${data}}`));
      const batch = () => decodeBatch(utf8(`[{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":${data}}]`));
      for (const decode of [binary, structured, batch]) {
        if (accepted) expectUsableEvent([decode()].flat()[0] as CloudEvent);
        else expect(refusal(decode)).toEqual({ code: 'SB_JSON_TOO_DEEP', pointer: '/data' });
      }
    }
    // The whole document, too: a bare deep array is no event and is not parsed.
    expect(refusal(() => decodeStructured(utf8(nested(100_000)))).code).toBe('SB_JSON_TOO_DEEP');
    // Brackets inside strings do not count.
    expect(decodeStructured(utf8(JSON.stringify({ ...base, data: '['.repeat(5000) }))).data).toBe('['.repeat(5000));
  });

  it('reads US-ASCII and ISO-8859-1 as themselves, so the same bytes are written back', () => {
    // TextDecoder reads both labels as windows-1252: 0x80 became "€", which ISO-8859-1 cannot
    // write back (and US-ASCII took bytes over 0x7f).
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'e1', 'ce-source': '/s', 'ce-type': 't' };
    const bytes = new Uint8Array([0x41, 0x80, 0x9f, 0xe9]);
    const latin1 = decodeCloudEvent({ ...headers, 'content-type': 'text/plain; charset=ISO-8859-1' }, bytes, cloudEventsBindings.http);
    expect(latin1.data).toBe('A\u0080\u009fé');
    expect([...encodeCloudEvent(latin1, cloudEventsBindings.http).body]).toEqual([...bytes]);
    expect(
      refusal(() => decodeCloudEvent({ ...headers, 'content-type': 'text/plain; charset=us-ascii' }, bytes, cloudEventsBindings.http)),
    ).toEqual({ code: 'SB_NOT_CLOUDEVENT', pointer: '/data' });
  });

  it('writes an event whose data is an event in structured mode: in binary mode it would read as structured', () => {
    // Binary mode put application/cloudevents+json in the content type; the receiver read the
    // data as the envelope (SB_MALFORMED_JSON for no data, or the inner event instead of the outer one).
    const outer: CloudEvent = { ...base, datacontenttype: 'application/cloudevents+json', data: { ...base, id: 'inner' } };
    for (const binding of bindings) {
      const encoded = encodeCloudEvent(outer, binding, 'binary');
      expect(decodeCloudEvent(encoded.headers, encoded.body, binding)).toStrictEqual(outer);
      if (binding.dataContentType === 'content-type') {
        expect(encoded.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8');
        expect(refusal(() => encodeBinary(outer, binding))).toEqual({ code: 'SB_NOT_CLOUDEVENT', pointer: '/datacontenttype' });
      }
    }
    expect(cloudEventFromHttp(cloudEventToHttp(outer).headers, cloudEventToHttp(outer).body)).toStrictEqual({
      mode: 'structured',
      event: outer,
    });
  });

  it('refuses structured data that is not a string where the media type is not JSON (JSON format 3.1.1)', () => {
    // It used to keep a number as the data of text/plain: an event no binding could write again.
    for (const [datacontenttype, data] of [
      ['text/plain', 5],
      ['text/plain', { a: 1 }],
      ['application/octet-stream', [1, 2]],
      ['application/xml', true],
    ] as const) {
      expect(refusal(() => decodeStructured(utf8(JSON.stringify({ ...base, datacontenttype, data }))))).toEqual({
        code: 'SB_NOT_CLOUDEVENT',
        pointer: '/data',
      });
    }
    expect(decodeStructured(utf8(JSON.stringify({ ...base, datacontenttype: 'text/plain', data: null })))).toStrictEqual({
      ...base,
      datacontenttype: 'text/plain',
    });
    expect(decodeStructured(utf8(JSON.stringify({ ...base, datacontenttype: 'application/json', data: null }))).data).toBeNull();
  });
});

describe('jsonNestsDeeperThan', () => {
  /** Depth of JSON text the slow way: parse it and walk the value (iteratively). */
  const depthOf = (text: string): number => {
    let deepest = 0;
    const stack: [unknown, number][] = [[JSON.parse(text), 0]];
    while (stack.length > 0) {
      const [value, depth] = stack.pop()!;
      if (typeof value !== 'object' || value === null) continue;
      deepest = Math.max(deepest, depth + 1);
      for (const child of Object.values(value)) stack.push([child, depth + 1]);
    }
    return deepest;
  };

  it('agrees with the depth of the parsed value, strings with brackets, quotes and backslashes included', () => {
    const tricky = fc.oneof(fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\\\', 'a') }), fc.jsonValue({ maxDepth: 3 }));
    const nested = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tricky,
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 }),
      ),
    })).value;
    fc.assert(
      fc.property(nested, fc.integer({ min: 0, max: 8 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(jsonNestsDeeperThan(text, limit)).toBe(depthOf(text) > limit);
      }),
      fuzzParameters(2_000),
    );
  });
});
