import type {
  BlobStore,
  CloudEventExtensions,
  CloudEventsBinding,
  CloudEventsMode,
  OutgoingMessage,
  StandardSchemaV1,
  ValidationResult,
} from '@switchboard/core';
import {
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  channels,
  childTraceparent,
  createCloudEvent,
  encodeCloudEvent,
  formatDataHash,
  newMessageId,
  SwitchboardError,
  validate,
} from '@switchboard/core';
import type { Address } from './addressing.js';
import type { PublishOptions } from './types.js';

const INT32_MAX = 2_147_483_647;
const JSON_TYPE = 'application/json';
const OCTET_STREAM = 'application/octet-stream';

export interface OutgoingConfig {
  readonly service: string;
  readonly binding: CloudEventsBinding;
  /**
   * CloudEvents content mode on the broker. `binary` (default): attributes in headers under the
   * binding, data as the body. `structured`: one `application/cloudevents+json` document, the only
   * header being its `content-type`.
   */
  readonly mode?: CloudEventsMode;
  readonly blobs: BlobStore | undefined;
  readonly thresholdBytes: number;
  readonly expiresInMs: number | undefined;
}

/** What one entry of the contract accepts: its schema (or none: a payload-free event), and whether it takes attachments. */
export interface OutgoingShape {
  readonly schema: StandardSchemaV1 | undefined;
  readonly attachments: boolean;
}

/**
 * Builds the broker message of one send: validates the data against the contract, stores the
 * attachment (and data over the threshold) in the blob store, and encodes a CloudEvents 1.0 event
 * in the config's content mode. Nothing is published here.
 */
export function buildOutgoing(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions = NO_OPTIONS,
): Promise<OutgoingMessage> {
  try {
    return Promise.resolve(prepareOutgoing(config, address, shape, data, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * {@link buildOutgoing} without the promise when none is needed: a plain send whose schema
 * validates synchronously is built in the same call. Throws what `buildOutgoing` rejects with.
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

function assertValid(result: ValidationResult<unknown>, address: Address): void {
  if (!result.ok) {
    throw new SwitchboardError('SB_VALIDATION', {
      detail: `Data of ${address.kind} ${address.name} of ${address.contract.name} does not match its schema`,
      errors: result.errors,
    });
  }
}

/** The message of validated data: in one pass from the address's template when it can, else the full CloudEvents path. */
function encode(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions,
): OutgoingMessage | Promise<OutgoingMessage> {
  if (isPlain(options)) {
    const template = templates.get(config)?.get(address.type);
    if (template !== undefined) {
      const fast =
        template.kind === 'structured'
          ? buildStructured(config, template, address, data, options)
          : buildPlain(config, template, address, data, options);
      if (fast !== undefined) return fast;
    }
  }
  return buildFull(config, address, shape, data, options);
}

async function buildFull(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions,
): Promise<OutgoingMessage> {
  const extensions: Record<string, string | number> = { traceparent: childTraceparent(options.traceparent) };
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
    const info = await blobs.put(options.attachment, {
      mediaType: options.attachmentType ?? OCTET_STREAM,
      ...(expires === undefined ? {} : { expiresAt: expires }),
    });
    Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, expires));
    extensions.datamediatype = info.mediaType;
  }

  let body: Uint8Array | undefined;
  let json: string | undefined;
  let datacontenttype: string | undefined;
  if (data !== undefined) {
    json = JSON.stringify(data);
    body = Buffer.from(json, 'utf8');
    datacontenttype = JSON_TYPE;
    if (
      config.blobs !== undefined &&
      options.attachment === undefined &&
      options.attachmentBlob === undefined &&
      body.byteLength > config.thresholdBytes
    ) {
      // The data itself is claim-checked: `dataref` without `datamediatype`; `datacontenttype` describes it.
      const expires = expiresAt(undefined);
      const info = await config.blobs.put(body, { mediaType: JSON_TYPE, ...(expires === undefined ? {} : { expiresAt: expires }) });
      Object.assign(extensions, claimExtensions(info.uri, info.sha256, info.size, expires));
      body = undefined;
    }
  }
  const event = createCloudEvent({
    type: address.type,
    source: config.service,
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    ...(datacontenttype === undefined ? {} : { datacontenttype }),
    // Binary mode sends the serialised bytes; structured mode writes the same JSON as a JSON value
    // (parsed back, so that it is exactly what JSON.stringify made of the data, as in binary mode).
    ...(body === undefined ? {} : { data: config.mode === 'structured' ? JSON.parse(json as string) : body }),
    extensions: extensions as CloudEventExtensions,
  });
  const encoded = encodeCloudEvent(event, config.binding, config.mode ?? 'binary');
  if (isPlain(options)) rememberTemplate(config, address, encoded.headers, event.source, event.type);
  const message: OutgoingMessage = {
    id: event.id,
    topic: address.topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  if (config.mode === 'structured' && channels.publish.hasSubscribers) {
    described.set(message, { type: event.type, traceparent: extensions.traceparent as string });
  }
  return message;
}

const NO_OPTIONS: PublishOptions = {};
const EMPTY_BODY = new Uint8Array(0);

/**
 * The attributes every plain binary-mode message of one address shares, already checked and
 * encoded once: `specversion`, `source`, `type` (and the header names under the binding's prefix).
 */
interface BinaryTemplate {
  readonly kind: 'binary';
  readonly specversion: string;
  readonly source: string;
  readonly type: string;
  readonly names: {
    readonly specversion: string;
    readonly id: string;
    readonly source: string;
    readonly type: string;
    readonly time: string;
    readonly traceparent: string;
  };
}

/**
 * The constant parts of a plain structured-mode document of one address, in the member order of
 * the JSON format encoder: `{"specversion","id","source","type",["datacontenttype"],"time",
 * "traceparent",["data"]}`. `source` and `type` were checked by the full build that made it.
 */
interface StructuredTemplate {
  readonly kind: 'structured';
  readonly type: string;
  /** `{"specversion":"1.0","id":"` */
  readonly head: string;
  /** `","source":…,"type":…,"datacontenttype":"application/json","time":"` */
  readonly withData: string;
  /** The same without `datacontenttype`: a payload-free event. */
  readonly withoutData: string;
  readonly headers: Readonly<Record<string, string>>;
}

type Template = BinaryTemplate | StructuredTemplate;

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

const templates = new WeakMap<OutgoingConfig, Map<string, Template>>();

/** Type and trace of structured messages built while the `publish` channel had subscribers (their headers do not say). */
const described = new WeakMap<OutgoingMessage, { readonly type: string; readonly traceparent: string }>();

/**
 * A plain send: no caller-chosen id, subject or tracestate and no attachment (stored or by reference). Every attribute
 * of such a message is either constant per address (checked when the first one went through the
 * full CloudEvents path) or generated here in a form that needs neither validation nor
 * escaping (UUIDv7 id, RFC 3339 UTC time, a hex `traceparent`).
 */
function isPlain(options: PublishOptions): boolean {
  return (
    options.attachment === undefined &&
    options.attachmentBlob === undefined &&
    options.id === undefined &&
    options.subject === undefined &&
    options.tracestate === undefined
  );
}

/** Remembers the constant parts of `address`'s messages once a full build produced and validated them. */
function rememberTemplate(
  config: OutgoingConfig,
  address: Address,
  headers: Readonly<Record<string, string>>,
  source: string,
  type: string,
): void {
  let byType = templates.get(config);
  if (byType === undefined) {
    byType = new Map();
    templates.set(config, byType);
  }
  if (byType.has(address.type)) return;
  if (config.mode === 'structured') {
    const attributes = `","source":${JSON.stringify(source)},"type":${JSON.stringify(type)}`;
    byType.set(address.type, {
      kind: 'structured',
      type,
      head: '{"specversion":"1.0","id":"',
      withData: `${attributes},"datacontenttype":"${JSON_TYPE}","time":"`,
      withoutData: `${attributes},"time":"`,
      headers: Object.freeze({ ...headers }),
    });
    return;
  }
  const prefix = config.binding.prefix;
  const names = {
    specversion: `${prefix}specversion`,
    id: `${prefix}id`,
    source: `${prefix}source`,
    type: `${prefix}type`,
    time: `${prefix}time`,
    traceparent: `${prefix}traceparent`,
  };
  const specversion = headers[names.specversion];
  const encodedSource = headers[names.source];
  const encodedType = headers[names.type];
  if (specversion === undefined || encodedSource === undefined || encodedType === undefined) return;
  byType.set(address.type, { kind: 'binary', specversion, source: encodedSource, type: encodedType, names });
}

/** The JSON text of validated data, or undefined when it goes to the blob store or cannot be JSON (the full path handles both). */
function dataJson(config: OutgoingConfig, data: unknown): string | undefined {
  const json = JSON.stringify(data);
  if (json === undefined) return undefined;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: count the bytes only when the length alone cannot tell.
  if (config.blobs !== undefined && json.length * 3 > config.thresholdBytes && Buffer.byteLength(json) > config.thresholdBytes) {
    return undefined;
  }
  return json;
}

/**
 * The one-pass build of a plain binary-mode message from its address's template; undefined when
 * the data goes to the blob store (the full path handles it).
 */
function buildPlain(
  config: OutgoingConfig,
  template: BinaryTemplate,
  address: Address,
  data: unknown,
  options: PublishOptions,
): OutgoingMessage | undefined {
  let body: Uint8Array = EMPTY_BODY;
  if (data !== undefined) {
    const json = dataJson(config, data);
    if (json === undefined) return undefined;
    body = Buffer.from(json, 'utf8');
  }
  const id = newMessageId();
  const names = template.names;
  // Same header order as `encodeBinary`: specversion, id, source, type, time, extensions, content-type.
  const headers: Record<string, string> = {
    [names.specversion]: template.specversion,
    [names.id]: id,
    [names.source]: template.source,
    [names.type]: template.type,
    [names.time]: nowIso(),
    [names.traceparent]: childTraceparent(options.traceparent),
  };
  if (data !== undefined) headers['content-type'] = JSON_TYPE;
  return options.key === undefined
    ? { id, topic: address.topic, headers, body }
    : { id, topic: address.topic, headers, body, key: options.key };
}

/**
 * The one-pass build of a plain structured-mode message: the JSON format document as the full
 * path writes it (same members, same order), concatenated around the data's own JSON text, with
 * the shared `content-type` header. Undefined when the data goes to the blob store.
 */
function buildStructured(
  config: OutgoingConfig,
  template: StructuredTemplate,
  address: Address,
  data: unknown,
  options: PublishOptions,
): OutgoingMessage | undefined {
  const id = newMessageId();
  const traceparent = childTraceparent(options.traceparent);
  let document: string;
  if (data === undefined) {
    document = `${template.head}${id}${template.withoutData}${nowIso()}","traceparent":"${traceparent}"}`;
  } else {
    const json = dataJson(config, data);
    if (json === undefined) return undefined;
    document = `${template.head}${id}${template.withData}${nowIso()}","traceparent":"${traceparent}","data":${json}}`;
  }
  const body = Buffer.from(document, 'utf8');
  const message: OutgoingMessage =
    options.key === undefined
      ? { id, topic: address.topic, headers: template.headers, body }
      : { id, topic: address.topic, headers: template.headers, body, key: options.key };
  if (channels.publish.hasSubscribers) described.set(message, { type: template.type, traceparent });
  return message;
}

/** CloudEvents `type` and `traceparent` of a message built here, for the `publish` diagnostics channel. */
export function describeOutgoing(
  message: OutgoingMessage,
  binding: CloudEventsBinding,
): { readonly type: string | undefined; readonly traceparent: string | undefined } {
  const known = described.get(message);
  if (known !== undefined) return known;
  const type = message.headers[`${binding.prefix}type`];
  if (type !== undefined) return { type, traceparent: message.headers[`${binding.prefix}traceparent`] };
  if (message.headers['content-type']?.startsWith(CLOUDEVENTS_JSON_MEDIA_TYPE)) {
    // Built before the channel had subscribers: read the document.
    try {
      const document = JSON.parse(Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength).toString('utf8')) as {
        type?: unknown;
        traceparent?: unknown;
      };
      return {
        type: typeof document.type === 'string' ? document.type : undefined,
        traceparent: typeof document.traceparent === 'string' ? document.traceparent : undefined,
      };
    } catch {
      // Not ours to judge here.
    }
  }
  return { type: undefined, traceparent: undefined };
}

function requireBlobs(config: OutgoingConfig): BlobStore {
  if (config.blobs === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'an attachment needs a blob store: pass `blobs` to createMessaging' });
  }
  return config.blobs;
}

function claimExtensions(uri: string, sha256: string, size: number, expiresAt: number | undefined): Record<string, string | number> {
  const out: Record<string, string | number> = { dataref: uri, datahash: formatDataHash(sha256) };
  if (size <= INT32_MAX) out.datasize = size;
  if (expiresAt !== undefined) out.dataexpires = new Date(expiresAt).toISOString();
  return out;
}
