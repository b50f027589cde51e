import type { BlobStore, CloudEventExtensions, CloudEventsBinding, OutgoingMessage, StandardSchemaV1 } from '@switchboard/core';
import {
  childTraceparent,
  createCloudEvent,
  encodeBinary,
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
 * in binary mode. Nothing is published here.
 */
export async function buildOutgoing(
  config: OutgoingConfig,
  address: Address,
  shape: OutgoingShape,
  data: unknown,
  options: PublishOptions = NO_OPTIONS,
): Promise<OutgoingMessage> {
  if (shape.schema === undefined) {
    if (data !== undefined) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `${address.kind} ${address.name} of ${address.contract.name} carries no data`,
        errors: [{ pointer: '', message: 'this event is payload-free; pass no data' }],
      });
    }
  } else {
    const checked = validate(shape.schema, data);
    const result = checked instanceof Promise ? await checked : checked;
    if (!result.ok) {
      throw new SwitchboardError('SB_VALIDATION', {
        detail: `Data of ${address.kind} ${address.name} of ${address.contract.name} does not match its schema`,
        errors: result.errors,
      });
    }
  }
  if (isPlain(options)) {
    const fast = buildPlain(config, address, data, options);
    if (fast !== undefined) return fast;
  }
  const extensions: Record<string, string | number> = { traceparent: childTraceparent(options.traceparent) };
  if (options.tracestate !== undefined) extensions.tracestate = options.tracestate;
  const expiresAt = (explicit: number | undefined): number | undefined =>
    explicit ?? (config.expiresInMs === undefined ? undefined : Date.now() + config.expiresInMs);

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
  let datacontenttype: string | undefined;
  if (data !== undefined) {
    body = Buffer.from(JSON.stringify(data), 'utf8');
    datacontenttype = JSON_TYPE;
    if (config.blobs !== undefined && options.attachment === undefined && body.byteLength > config.thresholdBytes) {
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
    ...(body === undefined ? {} : { data: body }),
    extensions: extensions as CloudEventExtensions,
  });
  const encoded = encodeBinary(event, config.binding);
  if (isPlain(options)) rememberTemplate(config, address, encoded.headers);
  return {
    id: event.id,
    topic: address.topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
}

const NO_OPTIONS: PublishOptions = {};
const EMPTY_BODY = new Uint8Array(0);

/**
 * The attributes every plain message of one address shares, already checked and encoded once:
 * `specversion`, `source`, `type` (and the header names under the binding's prefix).
 */
interface Template {
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

/**
 * A plain send: no caller-chosen id, subject or tracestate and no attachment. Every attribute
 * of such a message is either constant per address (checked when the first one went through the
 * full CloudEvents path) or generated here in a form that needs neither validation nor
 * percent-encoding (UUIDv7 id, RFC 3339 UTC time, a hex `traceparent`).
 */
function isPlain(options: PublishOptions): boolean {
  return options.attachment === undefined && options.id === undefined && options.subject === undefined && options.tracestate === undefined;
}

/** Remembers the constant headers of `address` once a full build produced and validated them. */
function rememberTemplate(config: OutgoingConfig, address: Address, headers: Readonly<Record<string, string>>): void {
  let byType = templates.get(config);
  if (byType === undefined) {
    byType = new Map();
    templates.set(config, byType);
  }
  if (byType.has(address.type)) return;
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
  const source = headers[names.source];
  const type = headers[names.type];
  if (specversion === undefined || source === undefined || type === undefined) return;
  byType.set(address.type, { specversion, source, type, names });
}

/**
 * The one-pass build of a plain message from its address's template; undefined when there is no
 * template yet or the data goes to the blob store (the full path handles both).
 */
function buildPlain(config: OutgoingConfig, address: Address, data: unknown, options: PublishOptions): OutgoingMessage | undefined {
  const template = templates.get(config)?.get(address.type);
  if (template === undefined) return undefined;
  let body: Uint8Array = EMPTY_BODY;
  if (data !== undefined) {
    const json = JSON.stringify(data);
    if (json === undefined) return undefined;
    body = Buffer.from(json, 'utf8');
    if (config.blobs !== undefined && body.byteLength > config.thresholdBytes) return undefined;
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
