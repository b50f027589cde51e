import type { Headers, OutgoingMessage } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { plainHeadersFromJson } from '@switchboard/core/kit';

/**
 * The plain layout of a message as the fields of a stream entry (see `docs/brokers.md`): every
 * header is a field of its own, named and valued as the header (CloudEvents attributes as `ce-*`
 * fields with raw values, `content-type`), plus three fields of the layout itself: `body` (the
 * bytes, untouched), and the optional `id` (transport id) and `key` (ordering key). A producer
 * that writes an entry by hand with `XADD` writes exactly this.
 */
export const FIELD_BODY = 'body';
export const FIELD_ID = 'id';
export const FIELD_KEY = 'key';

const NAME_BODY = Buffer.from(FIELD_BODY);
const NAME_ID = Buffer.from(FIELD_ID);
const NAME_KEY = Buffer.from(FIELD_KEY);
const EMPTY_BODY = new Uint8Array(0);

function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The field/value arguments of XADD for one message. */
export function encodeFields(message: OutgoingMessage): (string | Buffer)[] {
  const fields: (string | Buffer)[] = [FIELD_ID, message.id];
  const headers = message.headers;
  for (const name in headers) fields.push(name, headers[name]!);
  if (message.key !== undefined) fields.push(FIELD_KEY, message.key);
  fields.push(FIELD_BODY, Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength));
  return fields;
}

/** `SB_BAD_REQUEST` for a header that would take the place of a field of the layout. */
export function checkHeaderNames(message: OutgoingMessage): void {
  const headers = message.headers;
  if (headers[FIELD_BODY] === undefined && headers[FIELD_ID] === undefined && headers[FIELD_KEY] === undefined) return;
  throw new SwitchboardError('SB_BAD_REQUEST', {
    detail: `message ${message.id}: the headers "${FIELD_BODY}", "${FIELD_ID}" and "${FIELD_KEY}" are fields of the Redis stream layout; rename the header`,
  });
}

export interface DecodedEntry {
  /** The `id` field, or the stream entry id when the producer wrote none. */
  readonly id: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key: string | undefined;
}

/**
 * Reads a stream entry back: whatever fields a producer wrote are handed over, never dropped and
 * never allowed to stop the read loop (an entry that is no CloudEvent is the messaging layer's to
 * dead-letter, with its reason). Without a `body` field the body is empty.
 */
export function decodeFields(entryId: string, fields: readonly Buffer[]): DecodedEntry {
  let id: string | undefined;
  let body: Buffer | undefined;
  let key: string | undefined;
  const headers: Record<string, string> = {};
  // Field names compared as bytes: no string for the layout's own names.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (sameBytes(name, NAME_BODY)) body = value;
    else if (sameBytes(name, NAME_ID)) id = value.toString('utf8');
    else if (sameBytes(name, NAME_KEY)) key = value.toString('utf8');
    else headers[name.toString('utf8')] = value.toString('utf8');
  }
  return {
    id: id === undefined || id === '' ? entryId : id,
    headers: legacyHeaders(headers) ?? headers,
    body: body === undefined ? EMPTY_BODY : new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    key,
  };
}

const LEGACY_HEADERS = 'headers';

/**
 * Entries written by earlier versions kept every header in one `headers` field (a JSON object):
 * such an entry (that field and no other header) is read as it was written, so nothing published
 * before an upgrade is lost to it.
 */
function legacyHeaders(fields: Record<string, string>): Headers | undefined {
  const json = fields[LEGACY_HEADERS];
  if (json === undefined || !json.startsWith('{')) return undefined;
  for (const name in fields) if (name !== LEGACY_HEADERS) return undefined;
  return plainHeadersFromJson(json);
}

/** One entry of an XREADGROUP / XCLAIM reply, read with Buffer replies. */
export interface RawEntry {
  readonly entryId: string;
  /** `null` when the entry was deleted (trimmed) while it was pending. */
  readonly fields: Buffer[] | null;
}

export function parseEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply)) return [];
  const entries: RawEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || item.length < 2) continue;
    const [id, fields] = item as [Buffer | string, Buffer[] | null];
    entries.push({ entryId: id.toString(), fields: Array.isArray(fields) ? fields : null });
  }
  return entries;
}

/**
 * XREADGROUP answers one stream's entries keyed by stream name: `[[stream, entries], ...]` over
 * RESP2, a map over RESP3, which ioredis gives as a flat `[stream, entries, ...]` array (its default
 * `legacy` reply mapping) or a plain object (`replyMapping: 'resp3'`). Null on timeout.
 */
export function parseReadReply(reply: unknown): RawEntry[] {
  if (reply === null || typeof reply !== 'object') return [];
  const perStream: unknown[] = [];
  if (!Array.isArray(reply)) {
    perStream.push(...Object.values(reply));
  } else if (reply.length > 0 && !Array.isArray(reply[0])) {
    for (let i = 1; i < reply.length; i += 2) perStream.push(reply[i]);
  } else {
    for (const stream of reply) if (Array.isArray(stream)) perStream.push(stream[1]);
  }
  return perStream.flatMap((entries) => parseEntries(entries));
}
