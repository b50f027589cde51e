import type { Headers, OutgoingMessage } from '@switchboard/core';

/**
 * How one message is laid out as the fields of a stream entry. The MessageId, headers and key are
 * UTF-8 strings; the body is written and read as raw bytes, so any binary body survives.
 */
export const FIELD_ID = 'id';
export const FIELD_HEADERS = 'headers';
export const FIELD_BODY = 'body';
export const FIELD_KEY = 'key';

const NAME_ID = Buffer.from(FIELD_ID);
const NAME_HEADERS = Buffer.from(FIELD_HEADERS);
const NAME_BODY = Buffer.from(FIELD_BODY);
const NAME_KEY = Buffer.from(FIELD_KEY);

function sameBytes(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Header added to a delivery whose stream entry was not written by Switchboard (missing or broken fields). */
export const TRANSPORT_ERROR_HEADER = 'sb-transport-error';

export function encodeFields(message: OutgoingMessage): (string | Buffer)[] {
  const body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
  const fields: (string | Buffer)[] = [FIELD_ID, message.id, FIELD_HEADERS, JSON.stringify(message.headers), FIELD_BODY, body];
  if (message.key !== undefined) fields.push(FIELD_KEY, message.key);
  return fields;
}

export interface DecodedEntry {
  readonly id: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key: string | undefined;
}

/**
 * Reads a stream entry back. An entry that some other writer added with missing or unreadable
 * fields is still handed over, never dropped and never allowed to stop the read loop: its MessageId
 * falls back to `redis-<stream entry id>`, the body to empty, and the `sb-transport-error` header
 * says what was wrong, so the layer above dead-letters it with its reason.
 */
export function decodeFields(entryId: string, fields: readonly Buffer[]): DecodedEntry {
  let idField: Buffer | undefined;
  let headersField: Buffer | undefined;
  let body: Buffer | undefined;
  let keyField: Buffer | undefined;
  // Field names compared as bytes: no string per name, no map per entry.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (sameBytes(name, NAME_ID)) idField = value;
    else if (sameBytes(name, NAME_HEADERS)) headersField = value;
    else if (sameBytes(name, NAME_BODY)) body = value;
    else if (sameBytes(name, NAME_KEY)) keyField = value;
  }
  const problems: string[] = [];
  const idValue = idField?.toString('utf8');
  if (idValue === undefined || idValue === '') problems.push(`field "${FIELD_ID}" is missing`);
  if (body === undefined) problems.push(`field "${FIELD_BODY}" is missing`);
  let headers: Record<string, string> = {};
  if (headersField === undefined) {
    problems.push(`field "${FIELD_HEADERS}" is missing`);
  } else {
    try {
      const parsed: unknown = JSON.parse(headersField.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object');
      // The parsed object is kept as it is when every value is a string (the usual case).
      headers = parsed as Record<string, string>;
      for (const name in headers) {
        if (typeof headers[name] !== 'string') {
          problems.push(`header "${name}" is not a string`);
          delete headers[name];
        }
      }
    } catch {
      problems.push(`field "${FIELD_HEADERS}" is not a JSON object`);
    }
  }
  if (problems.length > 0) headers[TRANSPORT_ERROR_HEADER] = `stream entry ${entryId}: ${problems.join('; ')}`;
  return {
    id: idValue || `redis-${entryId}`,
    headers,
    body: body === undefined ? new Uint8Array(0) : new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    key: keyField?.toString('utf8'),
  };
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
