import type { Msg, MsgHdrs } from '@nats-io/nats-core';
import { canonicalMIMEHeaderKey, type Match, MsgHdrsImpl } from '@nats-io/nats-core';
import { MsgImpl } from '@nats-io/nats-core/internal';
import type { Headers } from '@switchboard/core';
import { ENCODED_HEADER, fromNatsHeaders, KEY_HEADER, MSG_ID_HEADER, OWN_PREFIX, type ReceivedHeaders, toNatsHeaders } from './binding.js';

/**
 * The header block of core NATS messages, without the client's per-header work on the hot path.
 * The wire format is exactly that of `toNatsHeaders` / `fromNatsHeaders` (same names, values,
 * order and escapes); these functions only take shorter roads to it:
 *
 * - publishing, the constant part of a header block is encoded once per frozen headers object
 *   (what a template-built message carries, e.g. a structured CloudEvent's `content-type`), and
 *   each message adds only its id;
 * - receiving, the block is read straight from the received bytes, one pass, no client header
 *   object.
 */

const HEADER_LINE = 'NATS/1.0';

/** The block of a frozen headers object without its id, or null when a value needs escaping (the general path handles it). */
const prefixes = new WeakMap<Headers, Prefix | null>();

interface Prefix {
  /** `NATS/1.0` and one `\r\n<name>: <value>` per header, in order. */
  readonly text: string;
  readonly entries: readonly (readonly [string, string])[];
  /** Whether the text is ASCII (then it is its own latin1 encoding, the cheapest to write). */
  readonly ascii: boolean;
}

/** True for an id the client would carry untouched: printable ASCII, no space (so nothing is trimmed or escaped). */
function isPlainId(id: string): boolean {
  if (id.length === 0) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function prefixOf(source: Headers): Prefix | null {
  let prefix = prefixes.get(source);
  if (prefix !== undefined) return prefix;
  // The general path decides, once: names checked, reserved names skipped, escapes noted.
  const probe = toNatsHeaders('-', source, undefined) as MsgHdrsImpl;
  const entries: [string, string][] = [];
  let text = HEADER_LINE;
  prefix = null;
  if (!probe.has(ENCODED_HEADER)) {
    for (const [name, values] of probe.headers) {
      if (name === MSG_ID_HEADER) continue;
      const value = values[0] ?? '';
      entries.push([name, value]);
      text += `\r\n${name}: ${value}`;
    }
    prefix = { text, entries, ascii: isAscii(text) };
  }
  prefixes.set(source, prefix);
  return prefix;
}

/**
 * Headers whose encoded form is already known: the client only asks a published message's
 * headers for their bytes. Every other use gets the same entries from a real `MsgHdrsImpl`, made
 * on first use (and from then on the source of the bytes too, so a change is never lost).
 */
class EncodedHeaders implements MsgHdrs {
  readonly #prefix: Prefix;
  readonly #id: string;
  #full: MsgHdrsImpl | undefined;

  constructor(prefix: Prefix, id: string) {
    this.#prefix = prefix;
    this.#id = id;
  }

  #headers(): MsgHdrsImpl {
    if (this.#full === undefined) {
      const full = new MsgHdrsImpl();
      for (const [name, value] of this.#prefix.entries) full.headers.set(name, [value]);
      if (this.#id !== '') full.headers.set(MSG_ID_HEADER, [this.#id]);
      this.#full = full;
    }
    return this.#full;
  }

  /** What `MsgHdrsImpl.encode` gives for the same entries. */
  encode(): Uint8Array {
    if (this.#full !== undefined) return this.#full.encode();
    const text = this.#id === '' ? `${this.#prefix.text}\r\n\r\n` : `${this.#prefix.text}\r\n${MSG_ID_HEADER}: ${this.#id}\r\n\r\n`;
    return Buffer.from(text, this.#prefix.ascii ? 'latin1' : 'utf8');
  }

  toString(): string {
    return new TextDecoder().decode(this.encode());
  }

  get hasError(): boolean {
    return this.#headers().hasError;
  }

  get status(): string {
    return this.#headers().status;
  }

  get code(): number {
    return this.#headers().code;
  }

  get description(): string {
    return this.#headers().description;
  }

  [Symbol.iterator](): IterableIterator<[string, string[]]> {
    return this.#headers()[Symbol.iterator]();
  }

  get(k: string, match?: Match): string {
    return this.#headers().get(k, match as 'exact' | undefined);
  }

  set(k: string, v: string, match?: Match): void {
    this.#headers().set(k, v, match);
  }

  append(k: string, v: string, match?: Match): void {
    this.#headers().append(k, v, match);
  }

  has(k: string, match?: Match): boolean {
    return this.#headers().has(k, match);
  }

  keys(): string[] {
    return this.#headers().keys();
  }

  values(k: string, match?: Match): string[] {
    return this.#headers().values(k, match);
  }

  delete(k: string, match?: Match): void {
    this.#headers().delete(k, match);
  }

  last(k: string, match?: Match): string {
    return this.#headers().last(k, match as 'exact' | undefined);
  }
}

/** The NATS headers of one message: the same as `toNatsHeaders`, encoded once per frozen headers object when it can be. */
export function coreHeaders(id: string, source: Headers, key: string | undefined): MsgHdrs {
  if (key === undefined && Object.isFrozen(source) && isPlainId(id)) {
    const prefix = prefixOf(source);
    if (prefix !== null) return new EncodedHeaders(prefix, id);
  }
  return toNatsHeaders(id, source, key);
}

/**
 * The NATS headers of one message whose headers are made per message (a binary-mode CloudEvent, a
 * request with its deadline): the same block as `toNatsHeaders(id, { ...source, [extra name]: extra
 * value }, key)`, written as one string in one pass instead of through the client's header object.
 * Anything out of the ordinary (a key, a value that needs escaping, a reserved name, an id the
 * client would trim) takes the general path.
 */
export function messageHeaders(id: string, source: Headers, key: string | undefined, extra?: readonly [string, string]): MsgHdrs {
  if (key === undefined && (id === '' || isPlainId(id)) && (extra === undefined || !Object.hasOwn(source, extra[0]))) {
    const entries: [string, string][] = [];
    let text = HEADER_LINE;
    let plain = true;
    for (const name in source) {
      const value = source[name];
      if (value === undefined) continue;
      if (name === MSG_ID_HEADER || name.startsWith(OWN_PREFIX) || needsEscape(value)) {
        plain = false;
        break;
      }
      checkName(name);
      entries.push([name, value]);
      text += `\r\n${name}: ${value}`;
    }
    if (
      plain &&
      (entries.length > 0 || extra !== undefined || id !== '') &&
      (extra === undefined || (!needsEscape(extra[1]) && !extra[0].startsWith(OWN_PREFIX) && extra[0] !== MSG_ID_HEADER))
    ) {
      if (extra !== undefined) {
        checkName(extra[0]);
        entries.push([extra[0], extra[1]]);
        text += `\r\n${extra[0]}: ${extra[1]}`;
      }
      // Written as UTF-8 without a scan for non-ASCII first: one block per message, not one per template.
      return new EncodedHeaders({ text, entries, ascii: false }, id);
    }
  }
  return toNatsHeaders(id, extra === undefined ? source : { ...source, [extra[0]]: extra[1] }, key);
}

/** A value NATS would alter (trim) or refuse (a line break): the general path escapes it. */
function needsEscape(value: string): boolean {
  const n = value.length;
  if (n === 0) return false;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first <= 0x20 || first >= 0x7f || last <= 0x20 || last >= 0x7f) return true;
  return value.indexOf('\n') !== -1 || value.indexOf('\r') !== -1;
}

/**
 * The status code of a received message's header block (`NATS/1.0 503` → 503; 0 without one), read
 * from the received bytes when the client kept them.
 */
export function statusOf(msg: Msg): number {
  if (!(msg instanceof MsgImpl)) return msg.headers?.code ?? 0;
  const length = msg._msg.hdr;
  if (length < 0) return 0;
  const raw = msg._rdata;
  if (raw === undefined || raw.byteLength < length) return msg.headers?.code ?? 0;
  // `NATS/1.0` is 8 bytes; a status follows it after a space, before the first line break.
  if (length < 10 || raw[8] !== 0x20) return 0;
  let code = 0;
  let i = 9;
  while (i < length && raw[i] === 0x20) i++;
  for (; i < length; i++) {
    const c = raw[i]!;
    if (c < 0x30 || c > 0x39) break;
    code = code * 10 + (c - 0x30);
  }
  return code;
}

/** Header names already checked by the client's own rule (a small, bounded set). */
const checkedNames = new Set<string>();
const MAX_CHECKED_NAMES = 1024;

function checkName(name: string): void {
  if (checkedNames.has(name)) return;
  canonicalMIMEHeaderKey(name);
  if (checkedNames.size < MAX_CHECKED_NAMES) checkedNames.add(name);
}

/**
 * The headers of a received message, as `fromNatsHeaders(msg.headers)` reads them: first value
 * of each name, values trimmed, the Switchboard headers taken out and unescaped. Read from the
 * message's bytes in one pass when the client kept them, through the client's parser otherwise.
 */
export function readCoreHeaders(msg: Msg): ReceivedHeaders {
  if (!(msg instanceof MsgImpl)) return fromNatsHeaders(msg.headers);
  const length = msg._msg.hdr;
  if (length < 0) return { id: '', key: undefined, headers: {} };
  const raw = msg._rdata;
  if (raw === undefined || raw.byteLength < length) return fromNatsHeaders(msg.headers);
  const text = Buffer.from(raw.buffer, raw.byteOffset, length).toString('utf8');
  const headers: Record<string, string> = {};
  let id = '';
  let key: string | undefined;
  let encodedList: string | undefined;
  let seenId = false;
  let seenEncoded = false;
  // Line 0 is the status line; then `name: value` lines up to the empty line.
  let start = text.indexOf('\r\n');
  while (start !== -1) {
    start += 2;
    let end = text.indexOf('\r\n', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const colon = text.indexOf(':', start);
      if (colon !== -1 && colon < end) {
        const name = text.slice(start, colon);
        checkName(name);
        const value = text.slice(colon + 1, end).trim();
        if (name === MSG_ID_HEADER) {
          if (!seenId) id = value;
          seenId = true;
        } else if (name === ENCODED_HEADER) {
          if (!seenEncoded) encodedList = value;
          seenEncoded = true;
        } else if (!Object.hasOwn(headers, name) && (name === KEY_HEADER || !name.startsWith(OWN_PREFIX))) {
          headers[name] = value;
        }
      }
    }
    start = end < text.length ? end : -1;
  }
  if (encodedList !== undefined && encodedList !== '') {
    for (const name of encodedList.split(',').map(decodeURIComponent)) {
      const value = headers[name];
      if (value !== undefined) headers[name] = decodeURIComponent(value);
    }
  }
  const rawKey = headers[KEY_HEADER];
  if (rawKey !== undefined) {
    key = rawKey;
    delete headers[KEY_HEADER];
  }
  return { id, key, headers };
}
