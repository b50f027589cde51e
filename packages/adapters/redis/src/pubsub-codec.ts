import type { Headers, OutgoingMessage } from '@switchboard/core';

/**
 * What a pub/sub message is on the channel. Redis pub/sub carries one byte string and no headers,
 * so:
 *
 * - A structured CloudEvent (headers: a `content-type` of `application/cloudevents+json` and
 *   nothing else, no key) travels as its JSON document alone: the plain layout, what the messaging
 *   layer sends on this broker (its binding is structured) and what any producer can `PUBLISH`.
 *   A received message that is not a frame is read this way: the bytes as the body, a structured
 *   `content-type`, and the document's `id` as the delivery's name.
 * - Any other message (a raw `Broker` user's own headers or key) travels in a frame, so nothing
 *   of it is lost: `SB` `0x01`, a 32-bit big-endian length, a JSON object `{ i: transport id,
 *   n: nonce, h: headers, k?: key }`, then the body bytes untouched. A CloudEvent document starts
 *   with `{` or white space, never with `SB`.
 *
 * The nonce names one publish (the same message may be published twice); group members claim
 * deliveries by it, and by a digest of the bytes for an unframed message.
 */
const MAGIC_0 = 0x53;
const MAGIC_1 = 0x42;
const VERSION = 1;
const PREFIX_BYTES = 7;
const STRUCTURED = /^application\/cloudevents\+json\s*(;|$)/i;

export interface DecodedFrame {
  /** The transport id. */
  readonly id: string;
  /** The publish's nonce: group members claim the delivery by it. */
  readonly nonce: string;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly body: Uint8Array;
}

/** Headers objects (a template-built message shares one, frozen) already known to be structured or not. */
const structuredHeaders = new WeakMap<Headers, boolean>();
/** The JSON of frozen headers objects: written once. */
const headersJson = new WeakMap<Headers, string>();

/** True when the message is a structured CloudEvent that travels as its document alone. */
export function isPlainStructured(message: OutgoingMessage): boolean {
  if (message.key !== undefined) return false;
  const headers = message.headers;
  const known = structuredHeaders.get(headers);
  if (known !== undefined) return known;
  let plain = false;
  let count = 0;
  for (const name in headers) {
    count++;
    plain = name === 'content-type' && STRUCTURED.test(headers[name]!);
  }
  plain &&= count === 1;
  if (Object.isFrozen(headers)) structuredHeaders.set(headers, plain);
  return plain;
}

function jsonOfHeaders(headers: Headers): string {
  if (!Object.isFrozen(headers)) return JSON.stringify(headers);
  let json = headersJson.get(headers);
  if (json === undefined) {
    json = JSON.stringify(headers);
    headersJson.set(headers, json);
  }
  return json;
}

/** The bytes to PUBLISH: the body alone for a structured CloudEvent, a frame for anything else. */
export function encodeMessage(message: OutgoingMessage, nonce: string): Buffer {
  if (isPlainStructured(message)) return Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
  return encodeFrame(message, nonce);
}

export function encodeFrame(message: OutgoingMessage, nonce: string): Buffer {
  // The members of `{ i, n, h, k? }` in that order, as JSON.stringify would write them.
  let json = `{"i":${JSON.stringify(message.id)},"n":${JSON.stringify(nonce)},"h":${jsonOfHeaders(message.headers)}`;
  json += message.key === undefined ? '}' : `,"k":${JSON.stringify(message.key)}}`;
  const metaBytes = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + metaBytes + message.body.byteLength);
  frame[0] = MAGIC_0;
  frame[1] = MAGIC_1;
  frame[2] = VERSION;
  frame.writeUInt32BE(metaBytes, 3);
  frame.write(json, PREFIX_BYTES, 'utf8');
  frame.set(message.body, PREFIX_BYTES + metaBytes);
  return frame;
}

/** Bytes a frame adds around the body (for the size check); 0 for a message sent unframed. */
export function frameOverhead(message: OutgoingMessage): number {
  if (isPlainStructured(message)) return 0;
  let size = PREFIX_BYTES + 64 + Buffer.byteLength(message.id) + Buffer.byteLength(message.key ?? '');
  for (const [name, value] of Object.entries(message.headers)) size += Buffer.byteLength(name) + Buffer.byteLength(value) + 8;
  return size;
}

/**
 * An upper bound of {@link frameOverhead} from string lengths alone (a UTF-16 code unit is at most
 * three UTF-8 bytes): cheap enough for every publish; the exact count runs only when it matters.
 */
export function frameOverheadBound(message: OutgoingMessage): number {
  let units = message.id.length + (message.key === undefined ? 0 : message.key.length);
  let count = 0;
  const headers = message.headers;
  for (const name in headers) {
    units += name.length + (headers[name]?.length ?? 0);
    count++;
  }
  return PREFIX_BYTES + 64 + 3 * units + 8 * count;
}

/** Whether received bytes start like a frame (`SB` and the version byte); anything else is a plain message. */
export function isFrame(message: Uint8Array): boolean {
  return message.length >= 3 && message[0] === MAGIC_0 && message[1] === MAGIC_1 && message[2] === VERSION;
}

/** What a plain message (a structured CloudEvent, from us or any producer) is handed over with. */
export const PLAIN_HEADERS: Headers = Object.freeze({ 'content-type': 'application/cloudevents+json' });

/** The `id` of a plain message's JSON document (its transport id is none: this names it), or `''`. */
export function plainMessageId(body: Uint8Array): string {
  try {
    const id = (JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')) as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : '';
  } catch {
    return '';
  }
}

/** The frame's content, or undefined when the bytes are not a well-formed frame. */
export function decodeFrame(frame: Buffer): DecodedFrame | undefined {
  if (frame.length < PREFIX_BYTES || frame[0] !== MAGIC_0 || frame[1] !== MAGIC_1 || frame[2] !== VERSION) return undefined;
  const metaBytes = frame.readUInt32BE(3);
  if (PREFIX_BYTES + metaBytes > frame.length) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(frame.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + metaBytes));
  } catch {
    return undefined;
  }
  if (typeof meta !== 'object' || meta === null) return undefined;
  const { i, n, h, k } = meta as { i?: unknown; n?: unknown; h?: unknown; k?: unknown };
  if (typeof i !== 'string' || typeof n !== 'string' || typeof h !== 'object' || h === null) return undefined;
  for (const value of Object.values(h)) if (typeof value !== 'string') return undefined;
  if (k !== undefined && typeof k !== 'string') return undefined;
  return { id: i, nonce: n, headers: h as Headers, key: k, body: frame.subarray(PREFIX_BYTES + metaBytes) };
}
