/**
 * Fuzzing helpers shared by the `fuzz-*.test.ts` property tests: the run settings (a bounded,
 * fixed-seed run in the fast tier; `npm run fuzz` scales the runs up and draws a random seed), and
 * fast-check arbitraries of CloudEvents messages as they may arrive from outside: valid events in
 * every binding and mode, then broken in every way a sender can break them (header names with
 * every prefix and casing, quoted strings, malformed or overlong percent-encodings, huge values,
 * random or deeply nested bodies, every content type).
 */
import type { CloudEvent, CloudEventAttributeValue, CloudEventsBinding, CloudEventsMode } from '@switchboard/core';
import { cloudEventsBindings, encodeCloudEvent, problemType } from '@switchboard/core';
import fc from 'fast-check';

/** The seed of the bounded run in the fast tier: the same inputs on every run, so a failure is a failure of the code. */
export const FUZZ_FIXED_SEED = 0x5b_0a_4d;

export interface FuzzSettings {
  /** `FUZZ_SEED`, or {@link FUZZ_FIXED_SEED}. */
  readonly seed: number;
  /** `FUZZ_SCALE`: each property's run count is multiplied by it (1 in the fast tier). */
  readonly scale: number;
}

function integerFrom(value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** The settings of this run, from `FUZZ_SEED` and `FUZZ_SCALE`. */
export function fuzzSettings(env: Readonly<Record<string, string | undefined>> = process.env): FuzzSettings {
  return {
    seed: integerFrom(env.FUZZ_SEED, 'FUZZ_SEED', FUZZ_FIXED_SEED, -(2 ** 31)) | 0,
    scale: integerFrom(env.FUZZ_SCALE, 'FUZZ_SCALE', 1, 1),
  };
}

/**
 * fast-check parameters for one property: `runs` (its count in the fast tier) times `FUZZ_SCALE`,
 * with the run's seed. A failure report from fast-check carries the seed and the path of the
 * counterexample, so `FUZZ_SEED=<seed> npm run fuzz` replays it.
 */
export function fuzzParameters(runs: number): { readonly seed: number; readonly numRuns: number } {
  const { seed, scale } = fuzzSettings();
  return { seed, numRuns: Math.max(1, Math.round(runs * scale)) };
}

// ---------------------------------------------------------------------------------------------
// Valid events

const asciiPieces = ['a', 'Z', '0', '9', ' ', '"', '%', '/', ':', '-', '~', '.', '=', ';', ',', '\\', '+', '#', '?'];
const unicodePieces = ['é', 'ß', '€', '中', '😀', '\u00a0', '\u2028', 'ǅ', '\u0301'];

/** A valid CloudEvents String: printable ASCII with the characters bindings escape, and non-ASCII text. */
export const attributeString: fc.Arbitrary<string> = fc
  .array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...asciiPieces) }, fc.constantFrom(...unicodePieces)), {
    minLength: 1,
    maxLength: 24,
  })
  .map((pieces) => pieces.join(''));

const extensionName = fc.stringMatching(/^[a-z][a-z0-9]{0,19}$/).filter((name) => !RESERVED.has(name));

const RESERVED = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'datacontenttype',
  'dataschema',
  'subject',
  'time',
  'data',
  'data_base64',
  'traceparent',
  'tracestate',
  'dataref',
  'datahash',
  'datasize',
  'datamediatype',
  'dataexpires',
]);

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** An RFC 3339 timestamp in the forms senders write. */
export const timestamp: fc.Arbitrary<string> = fc
  .record({
    year: fc.integer({ min: 0, max: 9999 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    fraction: fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
    zone: fc.constantFrom('Z', 'z', '+00:00', '-11:30', '+14:00'),
    t: fc.constantFrom('T', 't'),
  })
  .map(
    (p) =>
      `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}${p.t}${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}${p.fraction === undefined ? '' : `.${p.fraction}`}${p.zone}`,
  );

const source = fc.oneof(
  fc.constantFrom('/orders', 'https://example.com/a?b=c#d', 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66', 'service-a', '//host/p%20q'),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/),
);

const bytes = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: 1, maxLength });

/** JSON data as a sender's SDK writes it: numbers that survive a round trip through text, no `-0`. */
const jsonData: fc.Arbitrary<unknown> = fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.parse(JSON.stringify(value)));

interface DataShape {
  readonly datacontenttype?: string;
  readonly data?: unknown;
}

const dataShape: fc.Arbitrary<DataShape> = fc.oneof(
  fc.record({
    datacontenttype: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'application/vnd.example+json',
      'text/json',
      // An event carrying an event: binary mode cannot say so with its content type.
      'application/cloudevents+json',
    ),
    data: jsonData,
  }),
  fc.record({ data: jsonData.filter((value) => value !== null) }),
  fc.record({
    datacontenttype: fc.constantFrom('text/plain', 'text/plain; charset=utf-8', 'application/xml', 'text/csv; charset=UTF-8'),
    data: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  }),
  fc.record({ datacontenttype: fc.constantFrom('application/octet-stream', 'image/png', 'application/x-protobuf'), data: bytes(64) }),
  fc.record({ data: bytes(64) }),
  fc.record({ datacontenttype: fc.constantFrom('application/json', 'text/plain') }),
  fc.constant({}),
);

const extensionValue: fc.Arbitrary<CloudEventAttributeValue> = fc.oneof(
  attributeString,
  fc.integer({ min: -2_147_483_648, max: 2_147_483_647 }),
  fc.boolean(),
  bytes(16),
);

/**
 * A valid CloudEvent, with the extension types a receiver must be told (Integer, Boolean and
 * Binary extensions travel as strings in binary mode) to restore it exactly.
 */
export interface FuzzEvent {
  readonly event: CloudEvent;
  readonly extensionTypes: Readonly<Record<string, 'Integer' | 'Boolean' | 'Binary'>>;
}

export const validCloudEvent: fc.Arbitrary<FuzzEvent> = fc
  .record(
    {
      id: attributeString,
      source,
      type: fc.stringMatching(/^com\.example\.[a-z0-9.]{1,20}$/),
      subject: attributeString,
      time: timestamp,
      dataschema: fc.stringMatching(/^https:\/\/schemas\.example\.com\/[a-z0-9]{1,12}\.json$/),
      data: dataShape,
      extensions: fc.dictionary(extensionName, extensionValue, { maxKeys: 4 }),
      traceparent: fc.constant(`00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`),
      claimCheck: fc.record({
        dataref: fc.stringMatching(/^blob:\/\/bucket\/[a-z0-9]{1,12}$/),
        datasize: fc.integer({ min: 0, max: 2_147_483_647 }),
        datahash: fc.stringMatching(/^[0-9a-f]{64}$/).map((hex) => `sha256:${hex}`),
      }),
    },
    { requiredKeys: ['id', 'source', 'type', 'data', 'extensions'] },
  )
  .map((p) => {
    const event: Record<string, unknown> = { specversion: '1.0', id: p.id, source: p.source, type: p.type };
    if (p.subject !== undefined) event.subject = p.subject;
    if (p.time !== undefined) event.time = p.time;
    if (p.dataschema !== undefined) event.dataschema = p.dataschema;
    if (p.data.datacontenttype !== undefined) event.datacontenttype = p.data.datacontenttype;
    if (p.data.data !== undefined) event.data = p.data.data;
    const extensions: Record<string, CloudEventAttributeValue> = { ...p.extensions };
    const extensionTypes: Record<string, 'Integer' | 'Boolean' | 'Binary'> = {};
    for (const [name, value] of Object.entries(p.extensions)) {
      if (typeof value === 'number') extensionTypes[name] = 'Integer';
      else if (typeof value === 'boolean') extensionTypes[name] = 'Boolean';
      else if (value instanceof Uint8Array) extensionTypes[name] = 'Binary';
    }
    if (p.traceparent !== undefined) extensions.traceparent = p.traceparent;
    if (p.claimCheck !== undefined) Object.assign(extensions, p.claimCheck);
    if (Object.keys(extensions).length > 0) event.extensions = extensions;
    return { event: event as unknown as CloudEvent, extensionTypes };
  });

// ---------------------------------------------------------------------------------------------
// Hostile messages

/** Transport headers as a decoder may see them (node's `IncomingHttpHeaders` may hold arrays). */
export type FuzzHeaders = Record<string, string | string[]>;

/** A message as it arrives: headers and body, and how it was made (for failure reports). */
export interface FuzzMessage {
  readonly headers: FuzzHeaders;
  readonly body: Uint8Array;
}

const ATTRIBUTE_NAMES = [
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'dataschema',
  'datacontenttype',
  'data',
  'data_base64',
  'traceparent',
  'tracestate',
  'dataref',
  'datahash',
  'datasize',
  'datamediatype',
  'dataexpires',
  'sbsignature',
  'comexampleextension1',
  'Ext-Upper',
  'ext_under',
  'x'.repeat(40),
  'exté',
  '',
] as const;

const ALL_PREFIXES = [...new Set(Object.values(cloudEventsBindings).flatMap((b: CloudEventsBinding) => [b.prefix, ...b.readPrefixes]))];

/** `value` with the case of each ASCII letter flipped where `flips` says. */
function recase(value: string, flips: readonly boolean[]): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    out += flips[i % Math.max(1, flips.length)] === true ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c;
  }
  return out;
}

const flips = fc.array(fc.boolean(), { maxLength: 8 });

/** Header names: every binding's prefixes with every attribute name in any casing, `content-type`, and anything else. */
export const headerName: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...ALL_PREFIXES), fc.constantFrom(...ATTRIBUTE_NAMES), flips) },
    { weight: 2, arbitrary: fc.tuple(fc.constant(''), fc.constant('content-type'), flips) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ALL_PREFIXES, ''), fc.string({ unit: 'binary', maxLength: 12 }), flips) },
  )
  .map(([prefix, name, f]) => recase(prefix + name, f));

const huge = (unit: string, size: number): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);

/** Header values: plausible attribute values, and every way to break one. */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      '1.0',
      '0.3',
      '1.0 ',
      '',
      'a',
      '/orders',
      'com.example.fuzz',
      'service-b.name.submitted',
      'service-a.name.processed',
      '2018-04-05T17:31:00Z',
      '2018-02-30T17:31:00Z',
      'application/json',
      'text/plain; charset=iso-8859-1',
      'application/octet-stream',
      'application/cloudevents+json',
      '2147483647',
      '2147483648',
      '-0',
      '+1',
      '1e3',
      'true',
      'TRUE',
      'AAEC',
      'AAE=',
      '====',
      `sha256:${'0'.repeat(64)}`,
      `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`,
      'hs256;k1;AAAA',
    ),
  },
  { weight: 3, arbitrary: attributeString },
  // Quoted strings (RFC 7230), well-formed and not.
  {
    weight: 2,
    arbitrary: fc.oneof(
      attributeString.map((s) => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`),
      attributeString.map((s) => `"${s}`),
      attributeString.map((s) => `"${s}\\`),
      attributeString.map((s) => `"${s}"${s}`),
      fc.constantFrom('"', '""', '"\\"', '"a"b"', '\\"'),
    ),
  },
  // Percent-encodings: valid, truncated, not hex, overlong UTF-8, surrogates, past U+10FFFF, stray bytes.
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.constantFrom(
          '%20',
          '%25',
          '%22',
          '%E2%82%AC',
          '%F0%9F%98%80',
          '%',
          '%4',
          '%G0',
          '%zz',
          '%C0%AF',
          '%C0%80',
          '%E0%80%AF',
          '%F0%80%80%AF',
          '%ED%A0%80',
          '%F4%90%80%80',
          '%FF',
          '%80',
          '%E2%82',
          'a',
          '-',
          ' ',
        ),
        { minLength: 1, maxLength: 6 },
      )
      .map((parts) => parts.join('')),
  },
  // Anything, lone surrogates and controls included.
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 32 }) },
  // Huge values.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('a', '%41', '€', '"', '%'), fc.integer({ min: 4096, max: 96 * 1024 }))
      .map(([unit, size]) => huge(unit, size)),
  },
);

/** Content types a sender may put on a CloudEvents message, including wrong and broken ones. */
export const contentType: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      'application/cloudevents+json',
      'application/cloudevents+json; charset=utf-8',
      'application/cloudevents+json; charset=UTF-8',
      'application/cloudevents+json;charset="utf-8"',
      'APPLICATION/CLOUDEVENTS+JSON',
      'application/cloudevents+json; charset=latin1',
      'application/cloudevents+json; charset=utf-16',
      'application/cloudevents+json;',
      'application/cloudevents+json; charset="utf-8',
      'application/cloudevents+json; =x',
      'application/cloudevents-batch+json',
      'application/cloudevents-batch+json; charset=utf-8',
      'application/cloudevents+xml',
      'application/cloudevents+avro',
      'application/cloudevents',
      'application/json',
      'application/json; charset=utf-8',
      'application/vnd.example+json',
      'text/plain',
      'text/plain; charset=iso-8859-1',
      'text/plain; charset=us-ascii',
      'text/plain; charset=utf-16le',
      'text/plain; charset=bogus',
      'application/xml',
      'application/octet-stream',
      '',
      ' ',
      ';',
      '/',
      'application/',
      '/json',
      'text/plain; charset',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: headerValue },
);

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** JSON nested `depth` levels deep, in array or object form. */
export function deepJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Values of the wrong type for an attribute, as JSON. */
const wrongJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 31, -(2 ** 31) - 1, 1e308, '', ' ', '1.0', [], {}, [1], { a: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 16 }),
);

const structuredMembers = [
  'specversion',
  'id',
  'source',
  'type',
  'subject',
  'time',
  'dataschema',
  'datacontenttype',
  'data',
  'data_base64',
  'datasize',
  'datahash',
  'dataref',
  'traceparent',
  'comexampleextension1',
  'Bad-Name',
  '',
] as const;

/** A structured-mode JSON object, from a valid event with members replaced, added or removed. */
const structuredObject: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.record({ specversion: fc.constant('1.0'), id: attributeString, source, type: fc.constant('com.example.fuzz') }),
    fc.dictionary(fc.constantFrom(...structuredMembers), wrongJsonValue, { maxKeys: 4 }),
    fc.array(fc.constantFrom('specversion', 'id', 'source', 'type'), { maxLength: 2 }),
    fc.option(contentType, { nil: undefined }),
  )
  .map(([base, replaced, removed, datacontenttype]) => {
    const object: Record<string, unknown> = { ...base, ...replaced };
    if (datacontenttype !== undefined) object.datacontenttype = datacontenttype;
    for (const name of removed) delete object[name];
    return object;
  });

/** Bodies: random bytes, invalid UTF-8, JSON of every shape, deep JSON, structured objects with wrong members, batches. */
export const body: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array(0), utf8('null'), utf8('[]'), utf8('{}'), utf8(' '), utf8('{"')) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.uint8Array({ maxLength: 16 }),
        fc.constantFrom([0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]),
      )
      .map(([prefix, bad]) => new Uint8Array([...prefix, ...bad])),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => utf8(JSON.stringify(value))) },
  { weight: 3, arbitrary: structuredObject.map((object) => utf8(JSON.stringify(object))) },
  {
    weight: 1,
    arbitrary: fc.array(fc.oneof(structuredObject, wrongJsonValue), { maxLength: 4 }).map((items) => utf8(JSON.stringify(items))),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(1, 64, 511, 512, 513, 2_000, 6_000, 20_000),
        fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>,
        fc.boolean(),
      )
      .map(([depth, kind, asData]) =>
        utf8(
          asData
            ? `{"specversion":"1.0","id":"deep","source":"/fuzz","type":"service-b.name.submitted","data":${deepJson(depth, kind)}}`
            : deepJson(depth, kind),
        ),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1e400', '-1e400', '123456789012345678901234567890', `0.${'1'.repeat(400)}`, '-0', '1E-400', '[1e999]')
      .map((number) =>
        utf8(`{"specversion":"1.0","id":"n","source":"/fuzz","type":"com.example.n","datasize":${number},"data":${number}}`),
      ),
  },
);

/** The modes a binding's message may be written in: its own, and the other one. */
const modes: readonly CloudEventsMode[] = ['binary', 'structured'];

type Mutation =
  | { readonly kind: 'set'; readonly name: string; readonly value: string | string[] }
  | { readonly kind: 'delete'; readonly index: number }
  | { readonly kind: 'recase'; readonly index: number; readonly flips: readonly boolean[] }
  | { readonly kind: 'value'; readonly index: number; readonly value: string }
  | { readonly kind: 'content-type'; readonly value: string }
  | { readonly kind: 'body'; readonly body: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      name: headerName,
      value: fc.oneof({ weight: 5, arbitrary: headerValue }, fc.array(headerValue, { maxLength: 3 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('recase' as const), index: fc.nat(), flips }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('value' as const), index: fc.nat(), value: headerValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('content-type' as const), value: contentType }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('body' as const), body }) },
);

function applyMutation(message: { headers: FuzzHeaders; body: Uint8Array }, change: Mutation): void {
  const names = Object.keys(message.headers);
  switch (change.kind) {
    case 'set':
      message.headers[change.name] = change.value;
      return;
    case 'delete':
      if (names.length > 0) delete message.headers[names[change.index % names.length]!];
      return;
    case 'recase': {
      if (names.length === 0) return;
      const name = names[change.index % names.length]!;
      const value = message.headers[name]!;
      delete message.headers[name];
      message.headers[recase(name, change.flips)] = value;
      return;
    }
    case 'value':
      if (names.length > 0) message.headers[names[change.index % names.length]!] = change.value;
      return;
    case 'content-type': {
      for (const name of names) if (name.toLowerCase() === 'content-type') delete message.headers[name];
      message.headers['content-type'] = change.value;
      return;
    }
    case 'body':
      message.body = change.body;
      return;
  }
}

/**
 * Messages as they may arrive on `binding`: a valid event encoded in either mode (on this binding
 * or another one), then changed by up to six mutations; or headers and body made from nothing.
 */
export function hostileMessage(binding: CloudEventsBinding): fc.Arbitrary<FuzzMessage> {
  const bindings = Object.values(cloudEventsBindings) as CloudEventsBinding[];
  const mutated = fc
    .tuple(
      validCloudEvent,
      fc.constantFrom(...modes),
      fc.oneof({ weight: 3, arbitrary: fc.constant(binding) }, fc.constantFrom(...bindings)),
      fc.array(mutation, { minLength: 0, maxLength: 6 }),
    )
    .map(([{ event }, mode, writer, changes]) => {
      const encoded = encodeCloudEvent(event, writer, mode);
      const message = { headers: { ...encoded.headers } as FuzzHeaders, body: encoded.body };
      for (const change of changes) applyMutation(message, change);
      return message as FuzzMessage;
    });
  const scratch = fc.record({
    headers: fc.dictionary(headerName, fc.oneof({ weight: 6, arbitrary: headerValue }, contentType), {
      maxKeys: 8,
    }) as fc.Arbitrary<FuzzHeaders>,
    body,
  });
  return fc.oneof({ weight: 3, arbitrary: mutated }, { weight: 1, arbitrary: scratch });
}

/** Headers with only string values (what a broker carries: `Delivery.headers`). */
export function flatHeaders(headers: FuzzHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = typeof value === 'string' ? value : value.join(',');
  return out;
}

// ---------------------------------------------------------------------------------------------
// HTTP answers

/** An HTTP answer as a fuzz test saw it. */
export interface FuzzAnswer {
  /** `HEAD` answers carry no body. */
  readonly method?: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Text that must never reach a caller: stack frames, source paths, Node internals, what a handler's own error said. */
const LEAKS = [/\n\s+at /, /\.ts:\d+/, /\.js:\d+:\d+/, /node:internal/, /file:\/\//, /ECONNREFUSED/];

export interface AnswerRules {
  /** A 5xx is allowed (the handler itself failed, or was made to fail). */
  readonly serverErrorAllowed?: boolean;
  /** Codes a 5xx may carry anyway: what the caller asked for (`SB_DEADLINE_EXCEEDED` for its own short deadline). */
  readonly serverErrorCodes?: readonly string[];
  /** Codes a contract declares: allowed as problem `code`s besides the registry's. */
  readonly declaredCodes?: readonly string[];
  /** Text of the handlers' own errors: it must not appear in any answer. */
  readonly secrets?: readonly string[];
}

/**
 * What is wrong with an answer, or an empty list: a 5xx where none is allowed; a 4xx/5xx that is
 * not `application/problem+json` with a registry (or declared) `code`, a `status` equal to the
 * HTTP status, a `type` and a `title`; any answer showing a stack, an internal path or a secret.
 */
export function answerViolations(answer: FuzzAnswer, known: ReadonlySet<string>, rules: AnswerRules = {}): string[] {
  const problems: string[] = [];
  if (
    answer.status >= 500 &&
    rules.serverErrorAllowed !== true &&
    !rules.serverErrorCodes?.some((code) => answer.body.includes(`"code":"${code}"`))
  ) {
    problems.push(`status ${answer.status} for the caller's mistake`);
  }
  for (const pattern of LEAKS) if (pattern.test(answer.body)) problems.push(`the body shows ${pattern}`);
  for (const secret of rules.secrets ?? [])
    if (answer.body.includes(secret)) problems.push(`the body shows the handler's message ${secret}`);
  if (answer.status < 400) return problems;
  const contentType = answer.headers['content-type'];
  if (contentType !== 'application/problem+json') problems.push(`content-type ${String(contentType)}, not application/problem+json`);
  if (answer.method === 'HEAD') return problems;
  if (answer.body === '') return [...problems, 'no problem document'];
  let problem: Record<string, unknown>;
  try {
    problem = JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    return [...problems, 'the problem document is not JSON'];
  }
  if (typeof problem !== 'object' || problem === null) return [...problems, 'the problem document is not an object'];
  const code = problem.code;
  if (typeof code !== 'string' || !(known.has(code) || rules.declaredCodes?.includes(code) === true)) problems.push(`code ${String(code)}`);
  if (problem.status !== answer.status) problems.push(`problem status ${String(problem.status)} on a ${answer.status}`);
  if (typeof code === 'string' && known.has(code) && problem.type !== problemType(code))
    problems.push(`type ${String(problem.type)} for ${code}`);
  if (typeof problem.type !== 'string' || typeof problem.title !== 'string') problems.push('no type or title');
  return problems;
}
