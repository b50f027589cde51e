import type { Headers } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/** User property that carries the MessageId. */
export const ID_PROPERTY = 'sb-id';
/** User property that carries the ordering key. */
export const KEY_PROPERTY = 'sb-key';
/** Present (value `pct`) when every name and value of the message is escaped (see `needsEscape`). */
export const ENCODING_PROPERTY = 'sb-encoding';

const RESERVED = new Set([ID_PROPERTY, KEY_PROPERTY, ENCODING_PROPERTY]);
/** MQTT strings are prefixed by a 16-bit length. */
const MAX_STRING_BYTES = 0xffff;

export type UserProperties = Record<string, string>;

/**
 * True when the string holds something an MQTT 5 UTF-8 string may not carry, or that Mosquitto
 * refuses as malformed: U+0000, control characters (U+0001–U+001F, U+007F–U+009F), noncharacters
 * and lone surrogates (which have no UTF-8 form and would be replaced on the way).
 */
function needsEscape(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue;
    if (isBadUnit(value, i)) return true;
    if (c >= 0xd800 && c <= 0xdbff) i++;
  }
  return false;
}

/** Whether the code unit at `i` starts a code point to escape (a valid surrogate pair counts as one). */
function isBadUnit(value: string, i: number): boolean {
  const c = value.charCodeAt(i);
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  if ((c >= 0xfdd0 && c <= 0xfdef) || c === 0xfffe || c === 0xffff) return true;
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = value.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
    // Supplementary noncharacters: U+1FFFE, U+1FFFF, ... U+10FFFF.
    return (c & 0x3f) === 0x3f && next >= 0xdffe;
  }
  return c >= 0xdc00 && c <= 0xdfff;
}

/** `%` becomes `%25`, every code unit of a refused code point `%uXXXX`; everything else stays. */
function escapeValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25) {
      out += '%25';
      continue;
    }
    if (isBadUnit(value, i)) {
      const pair = c >= 0xd800 && c <= 0xdbff && value.charCodeAt(i + 1) >= 0xdc00 && value.charCodeAt(i + 1) <= 0xdfff;
      out += unit(c);
      if (pair) out += unit(value.charCodeAt(++i));
      continue;
    }
    out += value[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < value.length) out += value[++i];
  }
  return out;
}

function unit(c: number): string {
  return `%u${c.toString(16).padStart(4, '0')}`;
}

function unescapeValue(value: string): string {
  if (value.indexOf('%') === -1) return value;
  return value.replace(/%(25|u[0-9a-f]{4})/g, (_, code: string) =>
    code === '25' ? '%' : String.fromCharCode(Number.parseInt(code.slice(1), 16)),
  );
}

function checkLength(what: string, value: string): void {
  if (value.length * 3 > MAX_STRING_BYTES && Buffer.byteLength(value) > MAX_STRING_BYTES) {
    throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
      detail: `${what} is ${Buffer.byteLength(value)} bytes; MQTT strings hold at most ${MAX_STRING_BYTES} bytes`,
    });
  }
}

/**
 * The MQTT 5 user properties of one message: the headers under their own names, then the
 * MessageId and the key. When any name or value holds a character MQTT cannot carry, all of them
 * are escaped and `sb-encoding: pct` says so (the common case stays untouched and cheap).
 */
export function toUserProperties(id: string, source: Headers, key: string | undefined): UserProperties {
  let escaped = needsEscape(id) || (key !== undefined && needsEscape(key));
  if (!escaped) {
    for (const name in source) {
      const value = source[name];
      if (value === undefined || RESERVED.has(name)) continue;
      if (needsEscape(name) || needsEscape(value)) {
        escaped = true;
        break;
      }
    }
  }
  const map = escaped ? escapeValue : (value: string) => value;
  const properties: UserProperties = {};
  for (const name in source) {
    const value = source[name];
    if (value === undefined || RESERVED.has(name)) continue;
    const outName = map(name);
    const outValue = map(value);
    checkLength(`header name ${JSON.stringify(name.slice(0, 64))}`, outName);
    checkLength(`header ${JSON.stringify(name.slice(0, 64))}`, outValue);
    properties[outName] = outValue;
  }
  if (key !== undefined) {
    properties[KEY_PROPERTY] = map(key);
    checkLength('the key', properties[KEY_PROPERTY]);
  }
  properties[ID_PROPERTY] = map(id);
  checkLength('the MessageId', properties[ID_PROPERTY]);
  if (escaped) properties[ENCODING_PROPERTY] = 'pct';
  return properties;
}

export interface ReceivedProperties {
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Headers;
}

/** User properties as mqtt.js hands them over: a repeated name arrives as an array (first value wins). */
export type IncomingUserProperties = Readonly<Record<string, string | string[]>> | undefined;

export function fromUserProperties(source: IncomingUserProperties): ReceivedProperties {
  const headers: Record<string, string> = {};
  if (source === undefined) return { id: '', key: undefined, headers };
  const first = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);
  const escaped = first(source[ENCODING_PROPERTY]) === 'pct';
  const map = escaped ? unescapeValue : (value: string) => value;
  let id = '';
  let key: string | undefined;
  for (const name in source) {
    const value = first(source[name]);
    if (value === undefined || name === ENCODING_PROPERTY) continue;
    if (name === ID_PROPERTY) id = map(value);
    else if (name === KEY_PROPERTY) key = map(value);
    else headers[map(name)] = map(value);
  }
  return { id, key, headers };
}

/** UTF-8 bytes the user properties take on the wire (each pair: identifier, two length-prefixed strings). */
export function userPropertiesBytes(properties: UserProperties): number {
  let bytes = 0;
  for (const name in properties) bytes += 5 + Buffer.byteLength(name) + Buffer.byteLength(properties[name]!);
  return bytes;
}
