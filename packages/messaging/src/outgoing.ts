import type { BlobStore, CloudEventExtensions, CloudEventsBinding, OutgoingMessage, StandardSchemaV1 } from '@switchboard/core';
import { childTraceparent, createCloudEvent, encodeBinary, formatDataHash, SwitchboardError, validate } from '@switchboard/core';
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
  options: PublishOptions = {},
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
  return {
    id: event.id,
    topic: address.topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
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
