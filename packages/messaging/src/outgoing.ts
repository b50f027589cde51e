import type {
  BlobStore,
  CloudEvent,
  CloudEventExtensions,
  CloudEventsBinding,
  MessageSigner,
  OutgoingMessage,
  StandardSchemaV1,
  ValidationResult,
} from '@switchboard/core';
import {
  type ClaimCheckMessage,
  canonicalEvent,
  createCloudEvent,
  currentTrace,
  encodeCloudEvent,
  formatDataHash,
  identityProblems,
  newMessageId,
  normalizeTracestate,
  parseTraceparent,
  SwitchboardError,
  signEvent,
  traceAsync,
  tracing,
} from '@switchboard/core';
import { childTraceparent, percentEncodeHeaderValue, stringProblem, validate } from '@switchboard/core/kit';
import type { Address } from './addressing.js';
import type { PublishOptions } from './types.js';

const INT32_MAX = 2_147_483_647;
const JSON_TYPE = 'application/json';
const OCTET_STREAM = 'application/octet-stream';

export interface OutgoingConfig {
  /** The CloudEvents `source` of everything sent (the service name). */
  readonly service: string;
  /** The broker's binding: how attributes travel, and in which content mode. */
  readonly binding: CloudEventsBinding;
  readonly blobs: BlobStore | undefined;
  readonly thresholdBytes: number;
  readonly expiresInMs: number | undefined;
  /** Signs every event sent (the `sbsignature` extension); undefined: nothing is signed. */
  readonly signer?: MessageSigner | undefined;
}

/** What one entry of the contract accepts: its schema (or none: a payload-free event), and whether it takes attachments. */
export interface OutgoingShape {
  readonly schema: StandardSchemaV1 | undefined;
  readonly attachments: boolean;
}

const NO_OPTIONS: PublishOptions = {};

/**
 * Builds the broker message of one send: validates the data against the contract, stores the
 * attachment (and data over the threshold) in the blob store, and encodes a CloudEvents 1.0 event
 * through the broker's binding. Nothing is published here. Without a promise when none is needed:
 * a plain send whose schema validates synchronously is built in the same call. Throws (or rejects
 * with) `SB_VALIDATION` for data or options the contract or the envelope does not take.
 */
export function prepareOutgoing(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions = NO_OPTIONS,
): OutgoingMessage | Promise<OutgoingMessage> {
  if (shape.schema === undefined) {
    if (data !== undefined) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `${address.kind} ${address.name} of ${address.contract.name} carries no data`,
        errors: [{ pointer: '', message: 'this event is payload-free; pass no data' }],
      });
    }
  } else {
    const checked = validate(shape.schema, data);
    if (checked instanceof Promise) {
      return checked.then((result) => {
        assertValid(result, address);
        return encode(config, address, shape, data, options);
      });
    }
    assertValid(checked, address);
  }
  return encode(config, address, shape, data, options);
}

/** {@link prepareOutgoing}, always as a promise. */
export function buildOutgoing(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options?: PublishOptions,
): Promise<OutgoingMessage> {
  try {
    return Promise.resolve(prepareOutgoing(config, address, shape, data, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function assertValid(result: ValidationResult<unknown>, address: Address): void {
  if (!result.ok) {
    throw new SwitchboardError('SB_VALIDATION', {
      detail: `Data of ${address.kind} ${address.name} of ${address.contract.name} does not match its schema`,
      errors: result.errors,
    });
  }
}

/**
 * A plain send: no tracestate and no attachment. Every attribute of such a message is either
 * constant per address, generated here in a form that needs no validation and no escaping (UUIDv7
 * id, RFC 3339 UTC time, a hex `traceparent`), or a caller's `id` / `subject` checked here as the
 * envelope would check them and encoded as the binding says, so it can be built from the address's
 * {@link Template}. (Change sources send every change with an id and a subject of their own.)
 */
function isPlain(options: PublishOptions): boolean {
  return options.attachment === undefined && options.attachmentBlob === undefined && options.tracestate === undefined;
}

/**
 * The options with the trace to continue (explicit, else the ambient one) and their `tracestate` as
 * W3C Trace Context allows it on the way out: normalized
 * (no whitespace, no empty members), and dropped when invalid, empty, or without a valid
 * `traceparent` to belong to (then the message starts a new trace).
 */
function withValidTracestate(given: PublishOptions): PublishOptions {
  let options = given;
  if (options.traceparent === undefined) {
    // No explicit trace: the ambient one, the handler this send is made from.
    const ambient = currentTrace();
    if (ambient?.traceparent !== undefined) {
      options =
        ambient.tracestate === undefined
          ? { ...options, traceparent: ambient.traceparent }
          : { ...options, traceparent: ambient.traceparent, tracestate: ambient.tracestate };
    }
  }
  if (options.tracestate === undefined) return options;
  const tracestate = parseTraceparent(options.traceparent) === undefined ? undefined : normalizeTracestate(options.tracestate);
  if (tracestate === options.tracestate) return options;
  const { tracestate: _dropped, ...rest } = options;
  return tracestate === undefined ? rest : { ...rest, tracestate };
}

/** A caller's id or subject the envelope takes as it is: a non-empty CloudEvents String (an id within the identity limit). */
function plainValue(value: string | undefined, isId: boolean): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'string' || value === '' || stringProblem(value) !== undefined) return false;
  return !isId || identityProblems({ id: value, source: '' }).length === 0;
}

function encode(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  given: PublishOptions,
): OutgoingMessage | Promise<OutgoingMessage> {
  const options = withValidTracestate(given);
  if (isPlain(options) && plainValue(options.id, true) && plainValue(options.subject, false)) {
    let json: string | undefined;
    if (data !== undefined) {
      json = JSON.stringify(data);
      // Data the blob store takes, or that JSON cannot hold: the full path deals with it.
      if (json === undefined || overThreshold(config, json)) return encodeFull(config, address, shape, data, options);
    }
    const subject = options.subject;
    const template = templateFor(config, address, json !== undefined, subject !== undefined);
    if (template !== undefined) {
      const traceparent = childTraceparent(options.traceparent);
      const id = options.id ?? newMessageId();
      const time = nowIso();
      const signature = config.signer === undefined ? undefined : plainSignature(config, address, id, time, traceparent, json, subject);
      const built = template.build(id, time, traceparent, json, subject, signature);
      const message: OutgoingMessage =
        options.key === undefined
          ? { id: built.id, topic: address.topic, headers: built.headers, body: built.body }
          : { id: built.id, topic: address.topic, headers: built.headers, body: built.body, key: options.key };
      if (tracing.send.hasSubscribers) describe(message, config, address, traceparent, options.traceparent);
      return message;
    }
  }
  return encodeFull(config, address, shape, data, options);
}

const DATA_ONLY: OutgoingShape = { schema: undefined, attachments: false };

/**
 * The message carrying `data` (already checked) at `address`: built from the address's template when
 * it can be, claim-checked past the config's threshold, as a send is. Replies use it.
 */
export function encodeData(
  config: OutgoingConfig,
  address: Address,
  data: unknown,
  options: PublishOptions,
): OutgoingMessage | Promise<OutgoingMessage> {
  return encode(config, address, DATA_ONLY, data, options);
}

function overThreshold(config: OutgoingConfig, json: string): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: count the bytes only when the length alone cannot tell.
  return config.blobs !== undefined && json.length * 3 > config.thresholdBytes && Buffer.byteLength(json) > config.thresholdBytes;
}

/** Everything else: the CloudEvent is built and validated in full, attachments stored, then encoded by the codec. */
async function encodeFull(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions,
): Promise<OutgoingMessage> {
  if (options.id !== undefined) {
    const problems = identityProblems({ id: options.id, source: config.service });
    if (problems.length > 0) throw new SwitchboardError('SB_VALIDATION', { detail: 'the MessageId is too long', errors: problems });
  }
  const traceparent = childTraceparent(options.traceparent);
  const extensions: Record<string, string | number> = { traceparent };
  if (options.tracestate !== undefined) extensions.tracestate = options.tracestate;
  const expiresAt = (explicit: number | undefined): number | undefined =>
    explicit ?? (config.expiresInMs === undefined ? undefined : Date.now() + config.expiresInMs);

  if (options.attachment !== undefined && options.attachmentBlob !== undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: 'pass `attachment` (bytes to store) or `attachmentBlob` (a stored blob), not both',
    });
  }
  if (options.attachmentBlob !== undefined) {
    if (!shape.attachments) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `${address.kind} ${address.name} of ${address.contract.name} does not declare an attachment`,
      });
    }
    const info = options.attachmentBlob;
    Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, info.expiresAt));
    extensions.datamediatype = info.mediaType;
  }
  if (options.attachment !== undefined) {
    if (!shape.attachments) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `${address.kind} ${address.name} of ${address.contract.name} does not declare an attachment`,
      });
    }
    const blobs = requireBlobs(config);
    const expires = expiresAt(options.attachmentExpiresAt);
    const info = await putBlob(
      blobs,
      options.attachment,
      { mediaType: options.attachmentType ?? OCTET_STREAM, ...(expires === undefined ? {} : { expiresAt: expires }) },
      address.topic,
    );
    Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, expires));
    extensions.datamediatype = info.mediaType;
  }

  let json: string | undefined;
  if (data !== undefined) {
    json = JSON.stringify(data);
    if (json === undefined) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `Data of ${address.kind} ${address.name} of ${address.contract.name} cannot be written as JSON`,
      });
    }
    if (
      options.attachment === undefined &&
      options.attachmentBlob === undefined &&
      config.blobs !== undefined &&
      overThreshold(config, json)
    ) {
      // The data itself is claim-checked: `dataref` without `datamediatype`; `datacontenttype` describes it.
      const expires = expiresAt(undefined);
      const info = await putBlob(
        config.blobs,
        Buffer.from(json, 'utf8'),
        { mediaType: JSON_TYPE, ...(expires === undefined ? {} : { expiresAt: expires }) },
        address.topic,
      );
      Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, expires));
      json = undefined;
    }
  }
  const unsigned = envelope(config, address, json, extensions as CloudEventExtensions, options);
  const event = config.signer === undefined ? unsigned : signEvent(unsigned, config.signer);
  const encoded = encodeCloudEvent(event, config.binding);
  const message: OutgoingMessage = {
    id: event.id,
    topic: address.topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  if (tracing.send.hasSubscribers) describe(message, config, address, traceparent, options.traceparent);
  return message;
}

/**
 * The CloudEvent of one send. JSON data is held as the bytes `JSON.stringify` made of it in binary
 * mode (sent as they are) and as the JSON value parsed back from those bytes in structured mode
 * (written by the JSON format encoder), so both modes carry exactly the same JSON text.
 */
function envelope(
  config: OutgoingConfig,
  address: Address,
  json: string | undefined,
  extensions: CloudEventExtensions,
  options: { readonly id?: string; readonly subject?: string; readonly time?: string },
): CloudEvent {
  return createCloudEvent({
    type: address.type,
    source: config.service,
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.time === undefined ? {} : { time: options.time }),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(json === undefined
      ? {}
      : { datacontenttype: JSON_TYPE, data: config.binding.mode === 'structured' ? JSON.parse(json) : Buffer.from(json, 'utf8') }),
    extensions,
  });
}

// --- Templates: the codec's output for one address, with the per-message values cut out.

/** Values no real id, time or traceparent takes; each must occur exactly once in a template's output. */
const SLOT_ID = 'sb0template0id0c5e1f8a';
const SLOT_TIME = '1970-01-01T00:00:00.713Z';
const SLOT_TRACEPARENT = '00-7e3a0c5e1f8a2b4d6c9e0f1a2b3c4d5e-0f1e2d3c4b5a6978-01';
const SLOT_DATA = 'sb0template0data0c5e1f8a';
const SLOT_SUBJECT = 'sb0template0subject0c5e1f8a';
const SLOT_SIGNATURE = 'sb0template0signature0c5e1f8a';

type SlotName = 'id' | 'time' | 'traceparent' | 'data' | 'subject' | 'signature';

/**
 * The signature of a plain send, over the event the template writes (what a receiver decodes: the
 * JSON value, not its bytes), computed with the core canonical form.
 */
function plainSignature(
  config: OutgoingConfig,
  address: Address,
  id: string,
  time: string,
  traceparent: string,
  json: string | undefined,
  subject: string | undefined,
): string {
  const event: CloudEvent = {
    specversion: '1.0',
    id,
    source: config.service,
    type: address.type,
    time,
    ...(subject === undefined ? {} : { subject }),
    ...(json === undefined ? {} : { datacontenttype: JSON_TYPE, data: JSON.parse(json) }),
    extensions: { traceparent },
  };
  return config.signer!.sign(canonicalEvent(event));
}

interface Built {
  readonly id: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * What the codec writes for every plain send of one address (with or without data), computed once by
 * encoding an event whose per-message attributes are placeholders, then cut at the placeholders.
 * Filling the cuts with a message's id, time, traceparent and data JSON gives byte for byte what the
 * codec gives for that message (the values need no escaping in any binding; a test checks it for
 * every binding and content mode). Undefined when a placeholder does not occur exactly once (a
 * source or type containing it): that address always takes the full path.
 */
interface Template {
  build(id: string, time: string, traceparent: string, json: string | undefined, subject: string | undefined, signature?: string): Built;
}

const templates = new WeakMap<OutgoingConfig, Map<string, Template | null>>();

function templateFor(config: OutgoingConfig, address: Address, withData: boolean, withSubject: boolean): Template | undefined {
  let byAddress = templates.get(config);
  if (byAddress === undefined) {
    byAddress = new Map();
    templates.set(config, byAddress);
  }
  const key = `${address.type}\u0000${address.topic}\u0000${withData ? 'd' : ''}${withSubject ? 's' : ''}`;
  let template = byAddress.get(key);
  if (template === undefined) {
    template = makeTemplate(config, address, withData, withSubject) ?? null;
    byAddress.set(key, template);
  }
  return template ?? undefined;
}

function makeTemplate(config: OutgoingConfig, address: Address, withData: boolean, withSubject: boolean): Template | undefined {
  let event: CloudEvent;
  try {
    event = createCloudEvent({
      type: address.type,
      source: config.service,
      id: SLOT_ID,
      time: SLOT_TIME,
      ...(withSubject ? { subject: SLOT_SUBJECT } : {}),
      ...(withData
        ? {
            datacontenttype: JSON_TYPE,
            data: config.binding.mode === 'structured' ? SLOT_DATA : Buffer.from(JSON.stringify(SLOT_DATA), 'utf8'),
          }
        : {}),
      extensions:
        config.signer === undefined ? { traceparent: SLOT_TRACEPARENT } : { traceparent: SLOT_TRACEPARENT, sbsignature: SLOT_SIGNATURE },
    });
  } catch {
    return undefined;
  }
  const encoded = encodeCloudEvent(event, config.binding);
  const signed = config.signer !== undefined;
  return config.binding.mode === 'structured'
    ? structuredTemplate(encoded.headers, encoded.body, withData, withSubject, signed)
    : binaryTemplate(encoded.headers, config.binding, withSubject, signed);
}

function binaryTemplate(
  headers: Readonly<Record<string, string>>,
  binding: CloudEventsBinding,
  withSubject: boolean,
  signed: boolean,
): Template | undefined {
  const names = Object.keys(headers);
  const fixed = names.map((name) => headers[name]!);
  const slots: (SlotName | undefined)[] = fixed.map((value) =>
    value === SLOT_ID
      ? 'id'
      : value === SLOT_TIME
        ? 'time'
        : value === SLOT_TRACEPARENT
          ? 'traceparent'
          : value === SLOT_SUBJECT
            ? 'subject'
            : value === SLOT_SIGNATURE
              ? 'signature'
              : undefined,
  );
  const once = (slot: SlotName) => slots.filter((s) => s === slot).length === 1;
  if (!once('id') || !once('time') || !once('traceparent') || (withSubject && !once('subject')) || (signed && !once('signature'))) {
    return undefined;
  }
  // A caller's id or subject is encoded as the codec encodes every attribute value of this binding.
  const encodeValue = binding.values === 'percent' ? percentEncodeHeaderValue : (value: string) => value;
  const count = names.length;
  return {
    build(id, time, traceparent, json, subject, signature) {
      const out: Record<string, string> = {};
      for (let i = 0; i < count; i++) {
        const slot = slots[i];
        out[names[i]!] =
          slot === undefined
            ? fixed[i]!
            : slot === 'id'
              ? encodeValue(id)
              : slot === 'time'
                ? time
                : slot === 'traceparent'
                  ? traceparent
                  : slot === 'signature'
                    ? encodeValue(signature as string)
                    : encodeValue(subject as string);
      }
      return { id, headers: out, body: json === undefined ? EMPTY_BODY : Buffer.from(json, 'utf8') };
    },
  };
}

function structuredTemplate(
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
  withData: boolean,
  withSubject: boolean,
  signed: boolean,
): Template | undefined {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  const wanted: [SlotName, string][] = [
    ['id', JSON.stringify(SLOT_ID)],
    ['time', JSON.stringify(SLOT_TIME)],
    ['traceparent', JSON.stringify(SLOT_TRACEPARENT)],
  ];
  if (withData) wanted.push(['data', JSON.stringify(SLOT_DATA)]);
  if (withSubject) wanted.push(['subject', JSON.stringify(SLOT_SUBJECT)]);
  if (signed) wanted.push(['signature', JSON.stringify(SLOT_SIGNATURE)]);
  const found: { slot: SlotName; at: number; length: number }[] = [];
  for (const [slot, literal] of wanted) {
    const at = text.indexOf(literal);
    if (at === -1 || text.indexOf(literal, at + 1) !== -1) return undefined;
    found.push({ slot, at, length: literal.length });
  }
  found.sort((a, b) => a.at - b.at);
  const parts: string[] = [];
  let from = 0;
  for (const cut of found) {
    parts.push(text.slice(from, cut.at));
    from = cut.at + cut.length;
  }
  parts.push(text.slice(from));
  const order = found.map((cut) => cut.slot);
  const shared = Object.freeze({ ...headers });
  return {
    build(id, time, traceparent, json, subject, signature) {
      let out = parts[0]!;
      for (let i = 0; i < order.length; i++) {
        const slot = order[i];
        // Times and traceparents are plain ASCII without quotes or backslashes; an id or a subject may be
        // a caller's, so they are written as the JSON encoder writes every string.
        out +=
          slot === 'data'
            ? json
            : slot === 'id'
              ? JSON.stringify(id)
              : slot === 'time'
                ? `"${time}"`
                : slot === 'traceparent'
                  ? `"${traceparent}"`
                  : slot === 'signature'
                    ? JSON.stringify(signature)
                    : JSON.stringify(subject);
        out += parts[i + 1]!;
      }
      return { id, headers: shared, body: Buffer.from(out, 'utf8') };
    },
  };
}

const EMPTY_BODY = new Uint8Array(0);

let isoMs = -1;
let iso = '';

/** Now as an RFC 3339 UTC timestamp, formatted once per millisecond. */
function nowIso(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/** What the `switchboard:send` channel tells about a message built here. */
export interface OutgoingDescription {
  readonly type: string | undefined;
  readonly traceparent: string | undefined;
  readonly source: string | undefined;
  readonly kind: string | undefined;
  readonly parentTraceparent: string | undefined;
}

/**
 * Where a message built while the `send` channel had subscribers keeps its description: a
 * symbol-keyed field (cheaper than a WeakMap entry per message; JSON and the brokers never see it).
 */
const DESCRIPTION = Symbol('switchboard.outgoing.description');
type Described = OutgoingMessage & { [DESCRIPTION]?: OutgoingDescription };

function describe(
  message: OutgoingMessage,
  config: OutgoingConfig,
  address: Address,
  traceparent: string | undefined,
  parentTraceparent: string | undefined,
): void {
  (message as Described)[DESCRIPTION] = { type: address.type, traceparent, source: config.service, kind: address.kind, parentTraceparent };
}

const UNDESCRIBED: OutgoingDescription = {
  type: undefined,
  traceparent: undefined,
  source: undefined,
  kind: undefined,
  parentTraceparent: undefined,
};

/** CloudEvents `type`, `source` and `traceparent` of a message built here (for the `send` diagnostics channel). */
export function describeOutgoing(message: OutgoingMessage): OutgoingDescription {
  return (message as Described)[DESCRIPTION] ?? UNDESCRIBED;
}

/** `blobs.put`, traced on `switchboard:claimcheck:put` when someone listens. */
function putBlob(
  blobs: BlobStore,
  bytes: Parameters<BlobStore['put']>[0],
  options: Parameters<BlobStore['put']>[1],
  destination: string,
): ReturnType<BlobStore['put']> {
  if (!tracing.claimCheckPut.hasSubscribers) return blobs.put(bytes, options);
  const context: ClaimCheckMessage = { store: storeName(blobs), ref: '', messageId: undefined, destination };
  return traceAsync(
    tracing.claimCheckPut,
    context,
    () => blobs.put(bytes, options),
    (message, info) => {
      (message as { ref: string }).ref = info.uri;
      message.size = info.size;
    },
  );
}

function storeName(blobs: BlobStore): string {
  const name = (blobs as { name?: unknown }).name;
  return typeof name === 'string' ? name : (blobs.constructor?.name ?? 'blobs');
}

function requireBlobs(config: OutgoingConfig): BlobStore {
  if (config.blobs === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'an attachment needs a blob store: pass `blobs` to createMessaging' });
  }
  return config.blobs;
}

export function claimExtensions(uri: string, sha256: string, size: number, expiresAt: number | undefined): Record<string, string | number> {
  const out: Record<string, string | number> = { dataref: uri, datahash: formatDataHash(sha256) };
  if (size <= INT32_MAX) out.datasize = size;
  if (expiresAt !== undefined) out.dataexpires = new Date(expiresAt).toISOString();
  return out;
}

/**
 * Test seam: the message the full codec path builds for a plain send with the given id, time and
 * traceparent, next to what the address's template builds, so a test can compare them byte for byte.
 */
export function encodePlainBothWays(
  config: OutgoingConfig,
  address: Address,
  data: unknown,
  values: { readonly id: string; readonly time: string; readonly traceparent: string; readonly subject?: string },
): { readonly full: Built; readonly template: Built | undefined; readonly plain: boolean } {
  const json = data === undefined ? undefined : JSON.stringify(data);
  const event = envelope(
    config,
    address,
    json,
    { traceparent: values.traceparent },
    { id: values.id, time: values.time, ...(values.subject === undefined ? {} : { subject: values.subject }) },
  );
  const encoded = encodeCloudEvent(config.signer === undefined ? event : signEvent(event, config.signer), config.binding);
  const template = templateFor(config, address, json !== undefined, values.subject !== undefined);
  const signature =
    config.signer === undefined || template === undefined
      ? undefined
      : plainSignature(config, address, values.id, values.time, values.traceparent, json, values.subject);
  return {
    full: { id: event.id, headers: encoded.headers, body: encoded.body },
    template: template?.build(values.id, values.time, values.traceparent, json, values.subject, signature),
    plain: plainValue(values.id, true) && plainValue(values.subject, false),
  };
}
