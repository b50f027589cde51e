import type { Headers, OutgoingMessage } from '@switchboard/core';

/**
 * Redis pub/sub carries one byte string per message and no headers, so a message travels as one
 * frame: `SB` `0x01`, a 32-bit big-endian length, a JSON object `{ i: MessageId, n: nonce,
 * h: headers, k?: key }`, then the body bytes untouched. The nonce names one publish (the
 * MessageId may be published twice); group members claim deliveries by it.
 */
const MAGIC_0 = 0x53;
const MAGIC_1 = 0x42;
const VERSION = 1;
const PREFIX_BYTES = 7;

export interface DecodedFrame {
  readonly id: string;
  readonly nonce: string;
  readonly headers: Headers;
  readonly key: string | undefined;
  readonly body: Uint8Array;
}

/** The JSON of frozen headers objects (a template-built message shares one): written once. */
const headersJson = new WeakMap<Headers, string>();

function jsonOfHeaders(headers: Headers): string {
  if (!Object.isFrozen(headers)) return JSON.stringify(headers);
  let json = headersJson.get(headers);
  if (json === undefined) {
    json = JSON.stringify(headers);
    headersJson.set(headers, json);
  }
  return json;
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

/** Bytes a frame adds around the body (for the size check). */
export function frameOverhead(message: OutgoingMessage): number {
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

/** The frame's content, or undefined when the bytes are not a frame (published by something else). */
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
