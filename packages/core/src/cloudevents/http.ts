import type { HeadersInput } from './binary.js';
import { decodeBinary, getHeader } from './binary.js';
import { detectCloudEventsMode, encodeCloudEvent } from './codec.js';
import { utf8Bytes } from './data.js';
import type { CloudEvent, CloudEventsMode, DecodeOptions, EncodedCloudEvent } from './event.js';
import { cloudEventsBindings } from './event.js';
import { decodeBatch, decodeStructured } from './structured.js';

/** A Web `Headers` object (fetch, undici), or anything with the same `forEach`. */
export interface HeadersLike {
  forEach(callback: (value: string, name: string) => void): void;
}

/** What an HTTP request or response carried: one event, or a batch. */
export type HttpCloudEvents =
  | { readonly mode: CloudEventsMode; readonly event: CloudEvent }
  | { readonly mode: 'batch'; readonly events: CloudEvent[] };

export interface CloudEventToHttpOptions {
  /** Default `binary`. */
  readonly mode?: CloudEventsMode;
}

/**
 * Headers (`ce-*` and `content-type`, or just `content-type`) and body of an event as an HTTP
 * message. An event whose data is itself a CloudEvent (`datacontenttype: application/cloudevents+json`)
 * is always written in structured mode (see `encodeCloudEvent`).
 */
export function cloudEventToHttp(event: CloudEvent, options: CloudEventToHttpOptions = {}): EncodedCloudEvent {
  return encodeCloudEvent(event, cloudEventsBindings.http, options.mode ?? 'binary');
}

function toRecord(headers: HeadersInput | HeadersLike): HeadersInput {
  if (typeof (headers as Partial<HeadersLike>).forEach !== 'function') return headers as HeadersInput;
  const record: Record<string, string> = {};
  (headers as HeadersLike).forEach((value, name) => {
    record[name.toLowerCase()] = value;
  });
  return record;
}

/**
 * Reads the CloudEvent(s) of an HTTP request or response (CloudEvents HTTP protocol binding 1.0):
 * binary, structured (`application/cloudevents+json`) or batched (`application/cloudevents-batch+json`).
 * The error tells an endpoint what to answer: `SB_UNSUPPORTED_MEDIA_TYPE` → 415,
 * `SB_MALFORMED_JSON`, `SB_JSON_TOO_DEEP` and `SB_NOT_CLOUDEVENT` (with field errors) → 400.
 */
export function cloudEventFromHttp(
  headers: HeadersInput | HeadersLike,
  body: Uint8Array | string | undefined,
  options?: DecodeOptions,
): HttpCloudEvents {
  const record = toRecord(headers);
  const bytes = body === undefined ? new Uint8Array(0) : typeof body === 'string' ? utf8Bytes(body) : body;
  const mode = detectCloudEventsMode(record, cloudEventsBindings.http);
  if (mode === 'batch') return { mode, events: decodeBatch(bytes, getHeader(record, 'content-type'), options) };
  if (mode === 'structured') return { mode, event: decodeStructured(bytes, getHeader(record, 'content-type'), options) };
  return { mode, event: decodeBinary(record, bytes, cloudEventsBindings.http, options) };
}
