import { TextDecoder } from 'node:util';
import { jsonNestsDeeperThan } from '../json.js';
import type { FieldError } from '../standard-schema.js';
import type { MediaType } from './media-type.js';
import { isJsonEssence, isTextEssence, isUtf8Charset, parseMediaType } from './media-type.js';

const EMPTY = new Uint8Array(0);
const cache = new Map<string, MediaType | null>();

/** Parses a content type, memoised: the same few values arrive on every message. */
export function mediaTypeOf(contentType: string): MediaType | undefined {
  let parsed = cache.get(contentType);
  if (parsed === undefined) {
    parsed = parseMediaType(contentType) ?? null;
    if (cache.size >= 128) cache.clear();
    cache.set(contentType, parsed);
  }
  return parsed ?? undefined;
}

/**
 * The essence of a content type that names a CloudEvents format (`application/cloudevents+json`,
 * `application/cloudevents-batch+json`, any `application/cloudevents…`): what marks a message as
 * structured or batched mode. Undefined for every other content type.
 */
export function cloudEventsEssence(contentType: string): string | undefined {
  const essence = mediaTypeOf(contentType)?.essence;
  return essence?.startsWith('application/cloudevents') ? essence : undefined;
}

/** How `data` is carried for a `datacontenttype`: as a JSON value, as text, or as bytes. */
export type DataKind = 'json' | 'text' | 'bytes';

/** The data kind of a content type; absent means JSON (CloudEvents JSON format, section 3.1). */
export function dataKind(contentType: string | undefined): DataKind {
  if (contentType === undefined) return 'json';
  const media = mediaTypeOf(contentType);
  if (!media) return 'bytes';
  if (isJsonEssence(media.essence)) return 'json';
  if (isTextEssence(media.essence)) return 'text';
  return 'bytes';
}

/** A zero-copy `Uint8Array` view (not a Buffer) of some bytes. */
export function asUint8Array(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function utf8Bytes(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** A Buffer over the same memory, for Node's fast decoders. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function encodeText(text: string, charset: string | undefined): Uint8Array | string {
  if (charset === undefined || isUtf8Charset(charset)) return utf8Bytes(text);
  if (charset === 'us-ascii' || charset === 'ascii') {
    for (let i = 0; i < text.length; i++)
      if (text.charCodeAt(i) > 0x7f) return `data has a non-ASCII character at index ${i} but the charset is ${charset}`;
    return Buffer.from(text, 'latin1');
  }
  if (charset === 'iso-8859-1' || charset === 'latin1') {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return `data has a character outside ISO-8859-1 at index ${i}`;
    return Buffer.from(text, 'latin1');
  }
  return `cannot encode string data in charset ${charset}; give the data as a Uint8Array`;
}

/**
 * The body bytes of an event's data (binary content mode). Bytes are passed through untouched;
 * JSON data is serialised once; strings of text media types are encoded in their charset.
 * Returns a field error message when the data cannot be carried as that media type.
 */
export function dataToBytes(data: unknown, contentType: string | undefined): Uint8Array | FieldError {
  if (data === undefined) return EMPTY;
  if (data instanceof Uint8Array) return data;
  const kind = dataKind(contentType);
  if (kind === 'json') {
    const json = JSON.stringify(data);
    if (json === undefined) return { pointer: '/data', message: `data of type ${typeof data} cannot be serialised as JSON` };
    return utf8Bytes(json);
  }
  if (typeof data !== 'string') {
    return { pointer: '/data', message: `data for ${contentType} must be a string or a Uint8Array, got ${typeof data}` };
  }
  const media = contentType === undefined ? undefined : mediaTypeOf(contentType);
  const encoded = encodeText(data, media?.charset);
  return typeof encoded === 'string' ? { pointer: '/data', message: encoded } : encoded;
}

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Decodes a body as UTF-8, or reports where it is not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | FieldError {
  try {
    return utf8Fatal.decode(bytes);
  } catch {
    return { pointer: '/data', message: 'data is not valid UTF-8' };
  }
}

/**
 * Decodes text in its charset. US-ASCII and ISO-8859-1 are read as what they are, so that
 * {@link dataToBytes} writes the same bytes back (WHATWG's `TextDecoder` reads both labels as
 * windows-1252); other charsets through `TextDecoder`.
 */
function decodeText(bytes: Uint8Array, charset: string | undefined): unknown {
  if (charset === undefined || isUtf8Charset(charset)) return decodeUtf8(bytes);
  if (charset === 'us-ascii' || charset === 'ascii') {
    for (let i = 0; i < bytes.length; i++) if (bytes[i]! > 0x7f) return { pointer: '/data', message: `data is not valid ${charset}` };
    return asBuffer(bytes).toString('latin1');
  }
  if (charset === 'iso-8859-1' || charset === 'latin1') return asBuffer(bytes).toString('latin1');
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    // A charset this runtime cannot decode: hand over the bytes.
    return asUint8Array(bytes);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    return { pointer: '/data', message: `data is not valid ${charset}` };
  }
}

/** Outcome of reading data from bytes: the value, or why the bytes do not match their media type. */
export type DataResult =
  | { readonly ok: true; readonly data: unknown }
  /** `json`: the bytes are not JSON (`SB_MALFORMED_JSON`); `tooDeep`: JSON nested past `JSON_MAX_DEPTH` (`SB_JSON_TOO_DEEP`). */
  | { readonly ok: false; readonly error: FieldError; readonly json: boolean; readonly tooDeep?: true };

/**
 * The canonical in-memory data for a body (binary content mode): JSON parsed when the media type is
 * JSON, text decoded for text media types, the bytes themselves (zero-copy) otherwise or when no
 * media type is given. An empty body is no data.
 */
export function bytesToData(bytes: Uint8Array, contentType: string | undefined, raw: boolean): DataResult {
  if (bytes.byteLength === 0) return { ok: true, data: undefined };
  if (raw || contentType === undefined) return { ok: true, data: asUint8Array(bytes) };
  const kind = dataKind(contentType);
  if (kind === 'bytes') return { ok: true, data: asUint8Array(bytes) };
  const media = mediaTypeOf(contentType);
  const text = kind === 'json' ? decodeUtf8(bytes) : decodeText(bytes, media?.charset);
  if (typeof text === 'object' && text !== null && 'pointer' in text) return { ok: false, error: text as FieldError, json: false };
  if (kind === 'text' || typeof text !== 'string') return { ok: true, data: text };
  if (jsonNestsDeeperThan(text))
    return { ok: false, error: { pointer: '/data', message: 'data nests too deeply' }, json: true, tooDeep: true };
  try {
    return { ok: true, data: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: { pointer: '/data', message: `data is not valid JSON: ${(error as Error).message}` }, json: true };
  }
}
