import { SwitchboardError } from '../errors.js';
import { JSON_MAX_DEPTH, jsonNestsDeeperThan, jsonTooDeep } from '../json.js';
import type { FieldError } from '../standard-schema.js';
import { isBase64 } from './attribute-types.js';
import { asUint8Array, dataKind, decodeUtf8, mediaTypeOf, utf8Bytes } from './data.js';
import type { CloudEvent, CloudEventAttributeValue, DecodeOptions, EncodedCloudEvent } from './event.js';
import {
  CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE,
  CLOUDEVENTS_CORE_ATTRIBUTES,
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  SWITCHBOARD_EXTENSION_TYPES,
} from './event.js';
import { isUtf8Charset } from './media-type.js';
import { assertCloudEvent, notCloudEvent, validateCloudEvent } from './validate.js';

/** A CloudEvent in the JSON event format: flat members, `data` or `data_base64`. */
export type JsonCloudEvent = Record<string, unknown>;

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * The JSON format object of an event (CloudEvents JSON Event Format 1.0): JSON data as a JSON
 * value, text as a string, bytes as `data_base64`; Binary extensions as base64 strings.
 * Throws `SB_NOT_CLOUDEVENT` for an invalid event.
 */
export function toJsonCloudEvent(event: CloudEvent): JsonCloudEvent {
  assertCloudEvent(event);
  const out: JsonCloudEvent = { specversion: event.specversion, id: event.id, source: event.source, type: event.type };
  if (event.datacontenttype !== undefined) out.datacontenttype = event.datacontenttype;
  if (event.dataschema !== undefined) out.dataschema = event.dataschema;
  if (event.subject !== undefined) out.subject = event.subject;
  if (event.time !== undefined) out.time = event.time;
  const extensions = event.extensions;
  if (extensions !== undefined) {
    for (const name of Object.keys(extensions)) {
      const value = extensions[name];
      if (value !== undefined) out[name] = value instanceof Uint8Array ? base64(value) : value;
    }
  }
  const data = event.data;
  if (data === undefined) return out;
  if (data instanceof Uint8Array) {
    out.data_base64 = base64(data);
    return out;
  }
  const kind = dataKind(event.datacontenttype);
  if (kind === 'json') out.data = data;
  else if (typeof data !== 'string') {
    throw notCloudEvent([
      { pointer: '/data', message: `data for ${event.datacontenttype} must be a string or a Uint8Array, got ${typeof data}` },
    ]);
  } else if (kind === 'text') out.data = data;
  else out.data_base64 = base64(utf8Bytes(data));
  return out;
}

/** Structured content mode, JSON format: one `application/cloudevents+json` document. */
export function encodeStructured(event: CloudEvent): EncodedCloudEvent {
  return {
    headers: { 'content-type': `${CLOUDEVENTS_JSON_MEDIA_TYPE}; charset=utf-8` },
    body: utf8Bytes(JSON.stringify(toJsonCloudEvent(event))),
  };
}

/** Batched content mode (HTTP): one `application/cloudevents-batch+json` array. */
export function encodeBatch(events: readonly CloudEvent[]): EncodedCloudEvent {
  return {
    headers: { 'content-type': `${CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE}; charset=utf-8` },
    body: utf8Bytes(JSON.stringify(events.map(toJsonCloudEvent))),
  };
}

function jsonType(value: unknown): string {
  return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function prefixed(errors: readonly FieldError[], prefix: string): FieldError[] {
  return prefix === '' ? [...errors] : errors.map((error) => ({ pointer: prefix + error.pointer, message: error.message }));
}

/**
 * Reads one JSON format object into the canonical in-memory event. Returns the event, or every
 * field error (pointers under `pointerPrefix`, e.g. `/3` for the fourth event of a batch).
 */
export function fromJsonCloudEvent(
  value: unknown,
  options: DecodeOptions = {},
  pointerPrefix = '',
): { readonly event: CloudEvent; readonly errors?: undefined } | { readonly errors: FieldError[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      errors: [
        {
          pointer: pointerPrefix,
          message: `a structured CloudEvent must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
        },
      ],
    };
  }
  const json = value as Record<string, unknown>;
  const errors: FieldError[] = [];
  const event: Record<string, unknown> = {};
  let extensions: Record<string, unknown> | undefined;
  const types = options.extensionTypes;
  for (const name of Object.keys(json)) {
    const member = json[name];
    if (member === null || name === 'data' || name === 'data_base64') continue;
    if (CLOUDEVENTS_CORE_ATTRIBUTES.has(name)) {
      event[name] = member;
      continue;
    }
    const type = types?.[name] ?? SWITCHBOARD_EXTENSION_TYPES[name];
    extensions ??= {};
    extensions[name] =
      type === 'Binary' && typeof member === 'string' && isBase64(member) ? new Uint8Array(Buffer.from(member, 'base64')) : member;
  }
  if (extensions !== undefined) event.extensions = extensions as Record<string, CloudEventAttributeValue>;
  const hasData = json.data !== undefined;
  const encoded = json.data_base64;
  if (encoded !== undefined && encoded !== null) {
    if (hasData) errors.push({ pointer: '/data_base64', message: 'data and data_base64 must not both be present' });
    else if (typeof encoded !== 'string' || !isBase64(encoded))
      errors.push({ pointer: '/data_base64', message: 'data_base64 must be a base64 string' });
    else event.data = new Uint8Array(Buffer.from(encoded, 'base64'));
  } else if (hasData) {
    const data = json.data;
    const contentType = typeof event.datacontenttype === 'string' ? event.datacontenttype : undefined;
    const kind = dataKind(contentType);
    if (kind === 'json') event.data = data;
    else if (typeof data === 'string') event.data = kind === 'bytes' ? asUint8Array(utf8Bytes(data)) : data;
    // JSON format 3.1.1: data that is not JSON is a JSON string (text) or data_base64 (bytes); null is no data.
    else if (data !== null)
      errors.push({ pointer: '/data', message: `data for ${contentType} must be a JSON string or data_base64, got ${jsonType(data)}` });
  }
  const found = validateCloudEvent(event, types === undefined ? {} : { extensionTypes: types });
  if (errors.length > 0 || found.length > 0) return { errors: prefixed([...errors, ...found], pointerPrefix) };
  return { event: event as unknown as CloudEvent };
}

function checkContentType(contentType: string | undefined, expected: string): void {
  if (contentType === undefined) return;
  const media = mediaTypeOf(contentType);
  if (!media || media.essence !== expected) {
    throw new SwitchboardError('SB_UNSUPPORTED_MEDIA_TYPE', { detail: `expected ${expected}, got ${contentType}` });
  }
  if (media.charset !== undefined && !isUtf8Charset(media.charset)) {
    throw new SwitchboardError('SB_UNSUPPORTED_MEDIA_TYPE', { detail: `${expected} must be UTF-8, got charset=${media.charset}` });
  }
}

/**
 * Parses a structured or batched document. `envelope` is how many levels the format adds around
 * `data` (1 for an event, 2 for a batch): the depth limit is the data's, whatever the mode.
 */
function parseJsonBody(body: Uint8Array, envelope: number): unknown {
  const text = decodeUtf8(body);
  if (typeof text !== 'string') throw new SwitchboardError('SB_MALFORMED_JSON', { detail: 'the body is not valid UTF-8' });
  if (jsonNestsDeeperThan(text, JSON_MAX_DEPTH + envelope)) throw jsonTooDeep('/data');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SwitchboardError('SB_MALFORMED_JSON', { detail: (error as Error).message, cause: error });
  }
}

/**
 * Reads a structured-mode JSON document. `contentType`, when given, must be
 * `application/cloudevents+json` with no charset or UTF-8 (any case), else `SB_UNSUPPORTED_MEDIA_TYPE`.
 * Throws `SB_MALFORMED_JSON` when the body is not JSON, `SB_JSON_TOO_DEEP` when it nests deeper than
 * `JSON_MAX_DEPTH`, and `SB_NOT_CLOUDEVENT` with field errors when it is not a valid event.
 */
export function decodeStructured(body: Uint8Array, contentType?: string, options: DecodeOptions = {}): CloudEvent {
  checkContentType(contentType, CLOUDEVENTS_JSON_MEDIA_TYPE);
  const result = fromJsonCloudEvent(parseJsonBody(body, 1), options);
  if (result.errors) throw notCloudEvent(result.errors);
  return result.event;
}

/** Reads an `application/cloudevents-batch+json` array; errors point into it (`/2/id`). */
export function decodeBatch(body: Uint8Array, contentType?: string, options: DecodeOptions = {}): CloudEvent[] {
  checkContentType(contentType, CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE);
  const json = parseJsonBody(body, 2);
  if (!Array.isArray(json)) throw notCloudEvent([{ pointer: '', message: 'a CloudEvents batch must be a JSON array' }]);
  const events: CloudEvent[] = [];
  const errors: FieldError[] = [];
  for (let i = 0; i < json.length; i++) {
    const result = fromJsonCloudEvent(json[i], options, `/${i}`);
    if (result.errors) errors.push(...result.errors);
    else events.push(result.event);
  }
  if (errors.length > 0) throw notCloudEvent(errors);
  return events;
}
