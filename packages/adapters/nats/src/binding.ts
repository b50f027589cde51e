import type { MsgHdrs } from '@nats-io/nats-core';
import { canonicalMIMEHeaderKey, MsgHdrsImpl } from '@nats-io/nats-core';
import type { Headers } from '@switchboard/core';

/**
 * The wire mapping of the NATS adapters (JetStream and core NATS): `OutgoingMessage` / `Delivery`
 * headers to and from NATS headers, under the CloudEvents NATS binding.
 *
 * - The CloudEvents attributes arrive already mapped by the binding (`ce-<name>` headers with
 *   percent-encoded values, `ce-datacontenttype` in binary mode, `content-type:
 *   application/cloudevents+json` in structured mode) and travel as they are; received headers are
 *   handed up as they are too (the codec unquotes and percent-decodes them and matches names
 *   case-insensitively), so a `Ce-Id: "a b"` from an older producer reads as well.
 * - The transport id is `Nats-Msg-Id` (JetStream's publish deduplication). A message without one
 *   is handled like any other.
 * - The adapter's own metadata travels in `x-sb-*` headers (the ordering key; the names of other
 *   headers whose values had to be escaped because NATS trims them or refuses line breaks), taken
 *   out on receive.
 */

/** Header that carries the ordering key. */
export const KEY_HEADER = 'x-sb-key';
/** Names of headers whose values were percent-encoded because NATS would alter them. */
export const ENCODED_HEADER = 'x-sb-encoded';
/** Set by JetStream from the `msgID` publish option. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** Names of the adapter's own headers: never taken from the caller's headers, never handed up. */
export const OWN_PREFIX = 'x-sb-';

/** True for a printable ASCII character other than space: never trimmed, never a line break. */
function isPlainEdge(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

/** NATS trims header values and refuses CR/LF; such values travel percent-encoded. */
function needsEncoding(value: string): boolean {
  const n = value.length;
  if (n === 0) return false;
  if (isPlainEdge(value.charCodeAt(0)) && isPlainEdge(value.charCodeAt(n - 1))) {
    return value.indexOf('\n') !== -1 || value.indexOf('\r') !== -1;
  }
  return /[\r\n]/.test(value) || value.trim() !== value;
}

/** Header names already checked by the client's own rule (a small, bounded set: attribute names repeat). */
const checkedNames = new Set<string>();
const MAX_CHECKED_NAMES = 1024;

/** Throws the client's own error for a name NATS cannot carry. */
function checkName(name: string): void {
  if (checkedNames.has(name)) return;
  canonicalMIMEHeaderKey(name);
  if (checkedNames.size < MAX_CHECKED_NAMES) checkedNames.add(name);
}

/**
 * The NATS headers of one message. Built as one record handed to the client whole: its `set`
 * re-scans every header on each call, which shows on the publishing hot path. Names are checked
 * by the client's rule and values can no longer be altered by it (see `needsEncoding`), so the
 * record is exactly what `set` would have produced.
 */
export function toNatsHeaders(id: string, source: Headers, key: string | undefined): MsgHdrs {
  const record: Record<string, string[]> = {};
  const encoded: string[] = [];
  for (const name in source) {
    if (name === MSG_ID_HEADER || name.startsWith(OWN_PREFIX)) continue;
    const value = source[name];
    if (value === undefined) continue;
    checkName(name);
    if (needsEncoding(value)) {
      encoded.push(name);
      record[name] = [encodeURIComponent(value)];
    } else {
      record[name] = [value];
    }
  }
  if (key !== undefined) {
    if (needsEncoding(key)) {
      encoded.push(KEY_HEADER);
      record[KEY_HEADER] = [encodeURIComponent(key)];
    } else {
      record[KEY_HEADER] = [key];
    }
  }
  if (encoded.length > 0) record[ENCODED_HEADER] = [encoded.map(encodeURIComponent).join(',')];
  if (id !== '') record[MSG_ID_HEADER] = [needsEncoding(id) ? clientValue(MSG_ID_HEADER, id) : id];
  return MsgHdrsImpl.fromRecord(record);
}

/** The value as the client's own `set` stores it (trimmed), or its error for a line break. */
function clientValue(name: string, value: string): string {
  const probe = new MsgHdrsImpl();
  probe.set(name, value);
  return probe.get(name);
}

export interface ReceivedHeaders {
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Headers;
}

/** First value of each header, in arrival order (what `MsgHdrs.get` returns, without its per-call scan). */
function entriesOf(source: MsgHdrs): Iterable<[string, string]> {
  if (source instanceof MsgHdrsImpl) {
    const out: [string, string][] = [];
    for (const [name, values] of source.headers) out.push([name, values[0] ?? '']);
    return out;
  }
  return source.keys().map((name): [string, string] => [name, source.get(name)]);
}

export function fromNatsHeaders(source: MsgHdrs | undefined): ReceivedHeaders {
  const headers: Record<string, string> = {};
  if (source === undefined) return { id: '', key: undefined, headers };
  let id = '';
  let key: string | undefined;
  let encodedList = '';
  const entries = entriesOf(source);
  for (const [name, value] of entries) {
    if (name === ENCODED_HEADER) encodedList = value;
  }
  const encoded = encodedList === '' ? undefined : new Set(encodedList.split(',').map(decodeURIComponent));
  for (const [name, raw] of entries) {
    if (name === MSG_ID_HEADER) {
      id = raw;
      continue;
    }
    if (name === ENCODED_HEADER) continue;
    const value = encoded?.has(name) ? decodeURIComponent(raw) : raw;
    if (name === KEY_HEADER) key = value;
    else if (!name.startsWith(OWN_PREFIX)) headers[name] = value;
  }
  return { id, key, headers };
}
