import type { CloudEvent } from '@switchboard/core';
import {
  assertCloudEvent,
  CLOUDEVENTS_SPEC_VERSION,
  cloudEventFromHttp,
  cloudEventsBindings,
  cloudEventToHttp,
  createCloudEvent,
  decodeBatch,
  decodeBinary,
  decodeCloudEvent,
  decodeStructured,
  encodeBatch,
  encodeBinary,
  encodeStructured,
  formatDataHash,
  isSwitchboardError,
  parseDataHash,
  type SwitchboardError,
  toJsonCloudEvent,
  validateCloudEvent,
} from '@switchboard/core';
import { parseMediaType, percentDecodeHeaderValue, percentEncodeHeaderValue } from '@switchboard/core/kit';
import { describe, expect, it } from 'vitest';

const base = { specversion: '1.0', id: 'id-1', source: '/orders', type: 'com.example.order.placed' } as const;

function catchError(run: () => unknown): SwitchboardError {
  try {
    run();
  } catch (error) {
    if (isSwitchboardError(error)) return error;
    throw error;
  }
  throw new Error('expected a SwitchboardError');
}

const text = (value: string): Uint8Array => new Uint8Array(Buffer.from(value, 'utf8'));
const json = (value: unknown): Uint8Array => text(JSON.stringify(value));

describe('createCloudEvent', () => {
  it('fills specversion, a UUIDv7 id, the current time and a JSON content type', () => {
    const before = Date.now();
    const event = createCloudEvent({ type: 'com.example.a', source: 'service-a', data: { n: 1 } });
    expect(event.specversion).toBe(CLOUDEVENTS_SPEC_VERSION);
    expect(event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Date.parse(event.time ?? '')).toBeGreaterThanOrEqual(before - 1);
    expect(event.datacontenttype).toBe('application/json');
    expect(event.data).toEqual({ n: 1 });
    expect(validateCloudEvent(event)).toEqual([]);
  });

  it('uses application/octet-stream for bytes, no content type without data, and keeps what it is given', () => {
    expect(createCloudEvent({ type: 't', source: 's', data: new Uint8Array([1]) }).datacontenttype).toBe('application/octet-stream');
    const bare = createCloudEvent({ type: 't', source: 's', id: 'x', time: null });
    expect(bare).toEqual({ specversion: '1.0', id: 'x', source: 's', type: 't' });
    const at = createCloudEvent({
      type: 't',
      source: 's',
      time: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      extensions: { traceparent: '00-x' },
    });
    expect(at.time).toBe('2024-01-02T03:04:05.000Z');
    expect(at.extensions).toEqual({ traceparent: '00-x' });
  });

  it('throws SB_NOT_CLOUDEVENT with the field errors of invalid input', () => {
    const error = catchError(() => createCloudEvent({ type: '', source: 'not a uri', extensions: { Bad_Name: 'x' } }));
    expect(error.code).toBe('SB_NOT_CLOUDEVENT');
    expect(error.errors?.map((e) => e.pointer)).toEqual(['/source', '/type', '/Bad_Name']);
  });
});

describe('validateCloudEvent', () => {
  it('accepts a complete event with every attribute type', () => {
    const event = {
      ...base,
      time: '2018-04-05T17:31:00.123+02:00',
      subject: 'orders/42 – ünïcode',
      datacontenttype: 'application/json; charset=utf-8',
      dataschema: 'https://example.com/schemas/order.json',
      data: { id: 42 },
      extensions: {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        dataref: 'blob://pictures/abc',
        datahash: formatDataHash('AB'.repeat(32)),
        datasize: 2_147_483_647,
        datamediatype: 'image/png',
        dataexpires: '2030-01-01T00:00:00Z',
        flag: true,
        count: -3,
        raw: new Uint8Array([0, 255]),
      },
    };
    expect(validateCloudEvent(event)).toEqual([]);
    expect(() => assertCloudEvent(event)).not.toThrow();
  });

  it('reports every missing required attribute', () => {
    expect(validateCloudEvent({}).map((e) => e.pointer)).toEqual(['/specversion', '/id', '/source', '/type']);
    expect(validateCloudEvent('event')).toEqual([{ pointer: '', message: 'a CloudEvent must be an object, got string' }]);
  });

  it.each([
    [{ specversion: '0.3' }, '/specversion', 'specversion "0.3" is not supported; only CloudEvents "1.0" is'],
    [{ specversion: 1 }, '/specversion', 'specversion 1 is not supported; only CloudEvents "1.0" is'],
    [{ id: '' }, '/id', 'id must be a non-empty String'],
    [{ id: 5 }, '/id', 'id must be a String, got number'],
    [{ type: 'a\nb' }, '/type', 'type contains the control character U+000A at index 1'],
    [{ subject: 'x\u0085' }, '/subject', 'subject contains the control character U+0085 at index 1'],
    [{ subject: '\ud800' }, '/subject', 'subject contains a lone surrogate at index 0'],
    [{ subject: '\ufdd0' }, '/subject', 'subject contains the noncharacter U+FDD0 at index 0'],
    [{ source: 'a b' }, '/source', 'source must be a URI-reference: it has the character " " at index 1, which a URI must percent-encode'],
    [{ source: '1:2' }, '/source', 'source must be a URI-reference: it has a ":" before any "/" but does not start with a valid scheme'],
    [{ source: '/x%zz' }, '/source', 'source must be a URI-reference: it has a malformed percent-encoding at index 2'],
    [{ dataschema: '/relative' }, '/dataschema', 'dataschema must be a URI: it must be an absolute URI with a scheme'],
    [{ datacontenttype: 'json' }, '/datacontenttype', 'datacontenttype must be an RFC 2046 media type such as application/json'],
    [{ time: '2018-02-30T00:00:00Z' }, '/time', 'time must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z'],
    [{ time: '2018-04-05 17:31:00Z' }, '/time', 'time must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z'],
    [{ time: '2018-04-05T17:31:00' }, '/time', 'time must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z'],
  ])('rejects %o', (patch, pointer, message) => {
    expect(validateCloudEvent({ ...base, ...patch })).toEqual([{ pointer, message }]);
  });

  it.each([
    [{ Upper: 'x' }, '/Upper', 'extension name "Upper" must use only lower-case letters a-z and digits 0-9'],
    [{ with_underscore: 'x' }, '/with_underscore', 'extension name "with_underscore" must use only lower-case letters a-z and digits 0-9'],
    [{ id: 'x' }, '/id', 'id is a reserved attribute name and cannot be an extension'],
    [{ data: 'x' }, '/data', 'data is a reserved attribute name and cannot be an extension'],
    [{ ratio: 0.5 }, '/ratio', 'ratio must be an Integer (whole number, 32-bit signed), got the number 0.5'],
    [{ big: 2 ** 31 }, '/big', 'big must be an Integer (whole number, 32-bit signed), got number'],
    [{ nested: { a: 1 } }, '/nested', 'nested must be a String, Integer, Boolean or Binary, got object'],
    [{ datasize: '12' }, '/datasize', 'datasize must be an Integer (whole number, 32-bit signed), got string'],
    [{ datasize: -1 }, '/datasize', 'datasize must not be negative'],
    [{ datahash: 'md5:abc' }, '/datahash', 'datahash must be sha256:<64 hex digits>'],
    [{ dataref: 'a b' }, '/dataref', 'dataref has the character " " at index 1, which a URI must percent-encode'],
    [{ dataexpires: 'tomorrow' }, '/dataexpires', 'dataexpires must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z'],
  ])('rejects the extension %o', (extensions, pointer, message) => {
    expect(validateCloudEvent({ ...base, extensions })).toEqual([{ pointer, message }]);
  });

  it('checks declared extension types', () => {
    expect(validateCloudEvent({ ...base, extensions: { seen: 'yes' } }, { extensionTypes: { seen: 'Boolean' } })).toEqual([
      { pointer: '/seen', message: 'seen must be a Boolean, got string' },
    ]);
  });
});

describe('datahash', () => {
  it('reads sha256:<hex> and bare hex, and writes sha256:<hex>', () => {
    const hex = 'a'.repeat(64);
    expect(parseDataHash(`sha256:${hex}`)).toEqual({ algorithm: 'sha256', hex });
    expect(parseDataHash(hex.toUpperCase())).toEqual({ algorithm: 'sha256', hex });
    expect(parseDataHash('sha256:abc')).toBeUndefined();
    expect(formatDataHash('AB')).toBe('sha256:ab');
  });
});

describe('header values', () => {
  it('percent-encodes as the HTTP binding example does, and decodes back', () => {
    expect(percentEncodeHeaderValue('Euro € 😀')).toBe('Euro%20%E2%82%AC%20%F0%9F%98%80');
    expect(percentEncodeHeaderValue('say "100%"')).toBe('say%20%22100%25%22');
    expect(percentEncodeHeaderValue('plain-ASCII/!#$&*+')).toBe('plain-ASCII/!#$&*+');
    expect(percentDecodeHeaderValue('Euro%20%E2%82%AC%20%F0%9F%98%80')).toBe('Euro € 😀');
    expect(percentDecodeHeaderValue('%zz')).toBeUndefined();
    expect(percentDecodeHeaderValue('%FF')).toBeUndefined();
  });
});

describe('media types', () => {
  it('parses essence and charset case-insensitively, with quoted parameters', () => {
    expect(parseMediaType('Application/CloudEvents+JSON; Charset="UTF-8"')).toEqual({
      essence: 'application/cloudevents+json',
      charset: 'utf-8',
    });
    expect(parseMediaType('text/plain;format=flowed; charset=us-ascii')).toEqual({ essence: 'text/plain', charset: 'us-ascii' });
    expect(parseMediaType('application/json')).toEqual({ essence: 'application/json', charset: undefined });
    expect(parseMediaType('json')).toBeUndefined();
    expect(parseMediaType('text/plain; charset')).toBeUndefined();
  });
});

describe('binary mode', () => {
  const event: CloudEvent = {
    ...base,
    time: '2018-04-05T17:31:00Z',
    subject: 'Grüße "x" 100%',
    datacontenttype: 'application/json',
    data: { total: 12.5 },
    extensions: {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      retries: 2,
      urgent: true,
      sig: new Uint8Array([1, 2, 255]),
    },
  };

  it('maps attributes to prefixed headers, typed values to strings, data to the body (HTTP)', () => {
    const { headers, body } = encodeBinary(event, cloudEventsBindings.http);
    expect(headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': 'id-1',
      'ce-source': '/orders',
      'ce-type': 'com.example.order.placed',
      'ce-subject': 'Gr%C3%BC%C3%9Fe%20%22x%22%20100%25',
      'ce-time': '2018-04-05T17:31:00Z',
      'ce-traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'ce-retries': '2',
      'ce-urgent': 'true',
      'ce-sig': 'AQL/',
      'content-type': 'application/json',
    });
    expect(Buffer.from(body).toString()).toBe('{"total":12.5}');
  });

  it('restores declared extension types on read and leaves undeclared ones as strings', () => {
    const { headers, body } = encodeBinary(event, cloudEventsBindings.http);
    expect(
      decodeBinary(headers, body, cloudEventsBindings.http, { extensionTypes: { retries: 'Integer', urgent: 'Boolean', sig: 'Binary' } }),
    ).toEqual(event);
    expect(decodeBinary(headers, body, cloudEventsBindings.http).extensions).toEqual({
      ...event.extensions,
      retries: '2',
      urgent: 'true',
      sig: 'AQL/',
    });
  });

  it('uses the Kafka, AMQP and NATS prefixes, raw values where the binding has no percent-encoding', () => {
    const kafka = encodeBinary(event, cloudEventsBindings.kafka).headers;
    expect(kafka.ce_subject).toBe('Grüße "x" 100%');
    expect(kafka['content-type']).toBe('application/json');
    expect(encodeBinary(event, cloudEventsBindings.amqp).headers.cloudEvents_id).toBe('id-1');
    const nats = encodeBinary(event, cloudEventsBindings.nats).headers;
    expect(nats['ce-datacontenttype']).toBe('application/json');
    expect(nats['content-type']).toBeUndefined();
    expect(encodeBinary(event, cloudEventsBindings.nats).headers['ce-subject']).toBe('Gr%C3%BC%C3%9Fe%20%22x%22%20100%25');
  });

  it('matches header names case-insensitively on read', () => {
    const decoded = decodeBinary(
      {
        'CloudEvents:SpecVersion': '1.0',
        'cloudevents:id': 'a',
        'CLOUDEVENTS:SOURCE': 's',
        'cloudEvents:type': 't',
        'Content-Type': 'text/plain',
      },
      text('hi'),
      cloudEventsBindings.amqp,
    );
    expect(decoded).toEqual({ specversion: '1.0', id: 'a', source: 's', type: 't', datacontenttype: 'text/plain', data: 'hi' });
  });

  it('restores the Switchboard claim-check extensions without being told', () => {
    const hash = formatDataHash('0'.repeat(64));
    const decoded = decodeBinary(
      {
        ...encodeBinary({ ...base }, cloudEventsBindings.http).headers,
        'ce-dataref': 'blob://b/1',
        'ce-datahash': hash,
        'ce-datasize': '1048576',
      },
      new Uint8Array(0),
      cloudEventsBindings.http,
    );
    expect(decoded.extensions).toEqual({ dataref: 'blob://b/1', datahash: hash, datasize: 1_048_576 });
  });

  it('passes bytes through without copying, both ways', () => {
    const payload = new Uint8Array([0xff, 0x00, 0xfe]);
    const encoded = encodeBinary({ ...base, datacontenttype: 'application/octet-stream', data: payload }, cloudEventsBindings.kafka);
    expect(encoded.body).toBe(payload);
    const received = Buffer.from([0x7b, 0xff, 0x00, 0xfe]).subarray(1);
    const decoded = decodeBinary({ ...encoded.headers }, received, cloudEventsBindings.kafka);
    expect(decoded.data).toEqual(payload);
    expect((decoded.data as Uint8Array).buffer).toBe(received.buffer);
  });

  it('keeps the raw body with rawData, and reads text in its charset', () => {
    const headers = encodeBinary({ ...base, datacontenttype: 'application/json', data: [1] }, cloudEventsBindings.http).headers;
    expect(decodeBinary(headers, json([1]), cloudEventsBindings.http, { rawData: true }).data).toEqual(json([1]));
    const latin1 = decodeBinary(
      { ...headers, 'content-type': 'text/plain; charset=ISO-8859-1' },
      new Uint8Array([0x47, 0xfc]),
      cloudEventsBindings.http,
    );
    expect(latin1.data).toBe('Gü');
    const encoded = encodeBinary({ ...base, datacontenttype: 'text/plain; charset=iso-8859-1', data: 'Gü' }, cloudEventsBindings.http);
    expect([...encoded.body]).toEqual([0x47, 0xfc]);
  });

  it('treats an empty body as no data', () => {
    const { headers, body } = encodeBinary({ ...base, datacontenttype: 'application/json' }, cloudEventsBindings.http);
    expect(body.byteLength).toBe(0);
    expect(decodeBinary(headers, body, cloudEventsBindings.http)).toEqual({ ...base, datacontenttype: 'application/json' });
  });

  it('refuses data its media type cannot carry', () => {
    const error = catchError(() => encodeBinary({ ...base, datacontenttype: 'text/plain', data: { a: 1 } }, cloudEventsBindings.http));
    expect(error.errors).toEqual([{ pointer: '/data', message: 'data for text/plain must be a string or a Uint8Array, got object' }]);
    const ascii = catchError(() =>
      encodeBinary({ ...base, datacontenttype: 'text/plain; charset=us-ascii', data: 'é' }, cloudEventsBindings.http),
    );
    expect(ascii.errors?.[0]?.message).toBe('data has a non-ASCII character at index 0 but the charset is us-ascii');
  });

  it('reports precise errors for bad headers and bad data', () => {
    const headers = encodeBinary({ ...base }, cloudEventsBindings.http).headers;
    const bad = catchError(() =>
      decodeBinary(
        { ...headers, 'ce-id': '', 'ce-time': 'yesterday', 'ce-datacontenttype': 'text/plain', 'content-type': 'text/html', 'ce-x': '%E2' },
        text(''),
        cloudEventsBindings.http,
      ),
    );
    expect(bad.code).toBe('SB_NOT_CLOUDEVENT');
    expect(bad.errors).toEqual([
      { pointer: '/x', message: 'header ce-x has a malformed encoding' },
      { pointer: '/datacontenttype', message: 'the ce-datacontenttype header (text/plain) contradicts the content type (text/html)' },
      { pointer: '/id', message: 'id must be a non-empty String' },
      { pointer: '/time', message: 'time must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z' },
    ]);
    const malformed = catchError(() =>
      decodeBinary({ ...headers, 'content-type': 'application/json' }, text('{'), cloudEventsBindings.http),
    );
    expect(malformed.code).toBe('SB_MALFORMED_JSON');
    expect(malformed.errors?.[0]?.pointer).toBe('/data');
    const notUtf8 = catchError(() =>
      decodeBinary({ ...headers, 'content-type': 'text/plain' }, new Uint8Array([0xff]), cloudEventsBindings.http),
    );
    expect(notUtf8.errors).toEqual([{ pointer: '/data', message: 'data is not valid UTF-8' }]);
  });
});

describe('structured mode', () => {
  it('writes JSON data as JSON, text as a string, bytes as data_base64, Binary extensions as base64', () => {
    expect(toJsonCloudEvent({ ...base, data: { a: 1 }, extensions: { sig: new Uint8Array([255]), n: 1, b: false } })).toEqual({
      ...base,
      sig: '/w==',
      n: 1,
      b: false,
      data: { a: 1 },
    });
    expect(toJsonCloudEvent({ ...base, datacontenttype: 'text/xml', data: '<a/>' })).toEqual({
      ...base,
      datacontenttype: 'text/xml',
      data: '<a/>',
    });
    expect(toJsonCloudEvent({ ...base, datacontenttype: 'image/png', data: new Uint8Array([137, 80]) })).toEqual({
      ...base,
      datacontenttype: 'image/png',
      data_base64: 'iVA=',
    });
    const encoded = encodeStructured({ ...base });
    expect(encoded.headers).toEqual({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    expect(JSON.parse(Buffer.from(encoded.body).toString())).toEqual(base);
  });

  it('accepts charset=UTF-8 in any case and refuses other charsets and formats as unsupported media types', () => {
    const body = encodeStructured({ ...base, data: 'x' }).body;
    for (const contentType of [
      'application/cloudevents+json',
      'application/cloudevents+json; charset=UTF-8',
      'Application/CloudEvents+JSON;charset=utf-8',
    ]) {
      expect(decodeStructured(body, contentType)).toEqual({ ...base, data: 'x' });
    }
    expect(catchError(() => decodeStructured(body, 'application/cloudevents+json; charset=iso-8859-1')).code).toBe(
      'SB_UNSUPPORTED_MEDIA_TYPE',
    );
    expect(catchError(() => decodeStructured(body, 'application/json')).code).toBe('SB_UNSUPPORTED_MEDIA_TYPE');
  });

  it('reads data_base64 into bytes, null members as absent, strings of binary media types as bytes', () => {
    const body = json({ ...base, subject: null, datacontenttype: 'application/octet-stream', data_base64: 'AP8=' });
    expect(decodeStructured(body)).toEqual({ ...base, datacontenttype: 'application/octet-stream', data: new Uint8Array([0, 255]) });
    expect(decodeStructured(json({ ...base, datacontenttype: 'application/x-thing', data: 'hi' })).data).toEqual(text('hi'));
    expect(decodeStructured(json({ ...base, sig: 'AQ==' }), undefined, { extensionTypes: { sig: 'Binary' } }).extensions).toEqual({
      sig: new Uint8Array([1]),
    });
  });

  it('distinguishes malformed JSON from JSON that is not a CloudEvent', () => {
    const malformed = catchError(() => decodeStructured(text('{"id":')));
    expect([malformed.code, malformed.status]).toEqual(['SB_MALFORMED_JSON', 400]);
    expect(catchError(() => decodeStructured(new Uint8Array([0x22, 0xff, 0x22]))).code).toBe('SB_MALFORMED_JSON');
    const array = catchError(() => decodeStructured(json([base])));
    expect(array.errors).toEqual([{ pointer: '', message: 'a structured CloudEvent must be a JSON object, got an array' }]);
    const both = catchError(() => decodeStructured(json({ ...base, data: 1, data_base64: 'AA==' })));
    expect(both.errors).toEqual([{ pointer: '/data_base64', message: 'data and data_base64 must not both be present' }]);
    const badBase64 = catchError(() => decodeStructured(json({ ...base, data_base64: 'not base64!' })));
    expect(badBase64.errors).toEqual([{ pointer: '/data_base64', message: 'data_base64 must be a base64 string' }]);
    const nested = catchError(() => decodeStructured(json({ ...base, id: 7, meta: { a: 1 } })));
    expect(nested.errors).toEqual([
      { pointer: '/id', message: 'id must be a String, got number' },
      { pointer: '/meta', message: 'meta must be a String, Integer, Boolean or Binary, got object' },
    ]);
  });

  it('encodes and decodes batches, with errors pointing into the array', () => {
    const events = [
      { ...base, data: 1 },
      { ...base, id: 'id-2', datacontenttype: 'application/octet-stream', data: new Uint8Array([7]) },
    ];
    const batch = encodeBatch(events);
    expect(batch.headers['content-type']).toBe('application/cloudevents-batch+json; charset=utf-8');
    expect(decodeBatch(batch.body, batch.headers['content-type'])).toEqual(events);
    expect(decodeBatch(json([]))).toEqual([]);
    const error = catchError(() => decodeBatch(json([base, { ...base, id: '' }, 3])));
    expect(error.errors).toEqual([
      { pointer: '/1/id', message: 'id must be a non-empty String' },
      { pointer: '/2', message: 'a structured CloudEvent must be a JSON object, got number' },
    ]);
    expect(catchError(() => decodeBatch(json(base))).errors?.[0]?.message).toBe('a CloudEvents batch must be a JSON array');
  });
});

describe('HTTP binding', () => {
  const event: CloudEvent = { ...base, datacontenttype: 'application/json', data: { ok: true }, extensions: { traceparent: '00-a-b-01' } };

  it('round-trips binary, structured and batched requests', () => {
    const binary = cloudEventToHttp(event);
    expect(binary.headers['ce-id']).toBe('id-1');
    expect(cloudEventFromHttp(binary.headers, binary.body)).toEqual({ mode: 'binary', event });
    const structured = cloudEventToHttp(event, { mode: 'structured' });
    expect(cloudEventFromHttp(structured.headers, structured.body)).toEqual({ mode: 'structured', event });
    const batch = encodeBatch([event, event]);
    expect(cloudEventFromHttp(batch.headers, batch.body)).toEqual({ mode: 'batch', events: [event, event] });
  });

  it('reads a Web Headers object, node-style array values and a string body', () => {
    const binary = cloudEventToHttp(event);
    const headers = new Headers(binary.headers);
    expect(cloudEventFromHttp(headers, Buffer.from(binary.body).toString())).toEqual({ mode: 'binary', event });
    expect(cloudEventFromHttp({ ...binary.headers, 'ce-tags': ['a', 'b'] }, binary.body)).toMatchObject({
      event: { extensions: { tags: 'a,b' } },
    });
  });

  it('tells an endpoint whether to answer 415 or 400', () => {
    const cases: [Record<string, string>, string, string, number][] = [
      [{ 'content-type': 'application/cloudevents+xml' }, '<e/>', 'SB_UNSUPPORTED_MEDIA_TYPE', 415],
      [{ 'content-type': 'application/cloudevents+json; charset=utf-16' }, '{}', 'SB_UNSUPPORTED_MEDIA_TYPE', 415],
      [{ 'content-type': 'application/cloudevents+json' }, '{"specversion":', 'SB_MALFORMED_JSON', 400],
      [{ 'content-type': 'application/cloudevents-batch+json' }, '[', 'SB_MALFORMED_JSON', 400],
      [{ 'content-type': 'application/json' }, '{"a":1}', 'SB_NOT_CLOUDEVENT', 400],
      [{ 'content-type': 'application/cloudevents+json' }, '{"specversion":"1.0"}', 'SB_NOT_CLOUDEVENT', 400],
      [
        { 'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/s', 'ce-type': 't', 'content-type': 'application/json' },
        '{',
        'SB_MALFORMED_JSON',
        400,
      ],
    ];
    for (const [headers, body, code, status] of cases) {
      const error = catchError(() => cloudEventFromHttp(headers, body));
      expect([error.code, error.status], JSON.stringify(headers)).toEqual([code, status]);
    }
  });
});

describe('decodeCloudEvent', () => {
  it('detects the mode of a broker message and refuses batches outside HTTP', () => {
    const event: CloudEvent = { ...base, data: 'x', datacontenttype: 'text/plain' };
    const binary = encodeBinary(event, cloudEventsBindings.kafka);
    expect(decodeCloudEvent(binary.headers, binary.body, cloudEventsBindings.kafka)).toEqual(event);
    const structured = encodeStructured(event);
    expect(decodeCloudEvent(structured.headers, structured.body, cloudEventsBindings.kafka)).toEqual(event);
    const batch = encodeBatch([event]);
    expect(catchError(() => decodeCloudEvent(batch.headers, batch.body, cloudEventsBindings.nats)).code).toBe('SB_UNSUPPORTED_MEDIA_TYPE');
    const none = catchError(() => decodeCloudEvent({}, text('x'), cloudEventsBindings.http));
    expect(none.errors).toEqual([
      { pointer: '/specversion', message: 'no ce-specversion header and the content type is not application/cloudevents+json' },
    ]);
  });
});
