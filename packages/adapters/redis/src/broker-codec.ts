import type { Headers, OutgoingMessage } from '@switchboard/core';

/**
 * How one message is laid out as the fields of a stream entry. The MessageId, headers and key are
 * UTF-8 strings; the body is written and read as raw bytes, so any binary body survives.
 */
export const FIELD_ID = 'id';
export const FIELD_HEADERS = 'headers';
export const FIELD_BODY = 'body';
export const FIELD_KEY = 'key';

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
  const values = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i]!.toString('utf8'), fields[i + 1]!);
  const problems: string[] = [];
  const idValue = values.get(FIELD_ID)?.toString('utf8');
  if (idValue === undefined || idValue === '') problems.push(`field "${FIELD_ID}" is missing`);
  const body = values.get(FIELD_BODY);
  if (body === undefined) problems.push(`field "${FIELD_BODY}" is missing`);
  const headers: Record<string, string> = {};
  const rawHeaders = values.get(FIELD_HEADERS);
  if (rawHeaders === undefined) {
    problems.push(`field "${FIELD_HEADERS}" is missing`);
  } else {
    try {
      const parsed: unknown = JSON.parse(rawHeaders.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object');
      for (const [name, value] of Object.entries(parsed)) {
        if (typeof value === 'string') headers[name] = value;
        else problems.push(`header "${name}" is not a string`);
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
    key: values.get(FIELD_KEY)?.toString('utf8'),
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
