import type { Headers } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/**
 * The wire mapping of the MQTT adapter: `OutgoingMessage` / `Delivery` headers to and from MQTT 5
 * PUBLISH properties, under the CloudEvents MQTT binding.
 *
 * - The header `content-type` is the PUBLISH **Content Type** property: the event's
 *   `datacontenttype` in binary mode, `application/cloudevents+json` in structured mode.
 * - Every other header is a User Property under its own name: in binary mode the CloudEvents
 *   attributes, unprefixed, with their canonical string values.
 * - The adapter's own metadata (the transport id, the ordering key) travels in `x-sb-*` user
 *   properties, names no CloudEvents attribute can take (attribute names are lower-case letters
 *   and digits); they are taken out on receive. A message without them (a foreign producer) has
 *   the transport id `''`.
 * - MQTT strings cannot carry everything a header may hold: an entry whose name or value has a
 *   character MQTT refuses is escaped (`%25`, `%uXXXX`) and listed in `x-sb-escaped`; no other
 *   entry is touched, so a CloudEvents attribute (which may not hold such characters) is never
 *   altered.
 */

/** User property that carries the transport id. */
export const ID_PROPERTY = 'x-sb-id';
/** User property that carries the ordering key. */
export const KEY_PROPERTY = 'x-sb-key';
/** The names (as sent, each URI-component-encoded, comma-separated) of the user properties whose name and value are escaped. */
export const ESCAPED_PROPERTY = 'x-sb-escaped';

const OWN_PREFIX = 'x-sb-';
const CONTENT_TYPE = 'content-type';
/** MQTT strings are prefixed by a 16-bit length. */
const MAX_STRING_BYTES = 0xffff;

export type UserProperties = Record<string, string>;

/** What a PUBLISH carries for one message. */
export interface MqttProperties {
  readonly userProperties: UserProperties;
  readonly contentType?: string;
}

function isContentType(name: string): boolean {
  return name.length === CONTENT_TYPE.length && (name === CONTENT_TYPE || name.toLowerCase() === CONTENT_TYPE);
}

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
 * The MQTT 5 properties of one message: `content-type` as the Content Type property, the other
 * headers as user properties under their own names, then the transport id and the key.
 */
export function toMqttProperties(id: string, source: Headers, key: string | undefined): MqttProperties {
  const userProperties: UserProperties = {};
  let contentType: string | undefined;
  let escaped: string[] | undefined;
  const put = (name: string, value: string, what: string) => {
    let outName = name;
    let outValue = value;
    if (needsEscape(name) || needsEscape(value)) {
      outName = escapeValue(name);
      outValue = escapeValue(value);
      escaped ??= [];
      escaped.push(encodeURIComponent(outName));
    }
    checkLength(`${what} name`, outName);
    checkLength(what, outValue);
    userProperties[outName] = outValue;
  };
  for (const name in source) {
    const value = source[name];
    if (value === undefined || name.startsWith(OWN_PREFIX)) continue;
    if (contentType === undefined && isContentType(name) && !needsEscape(value)) {
      checkLength('the content type', value);
      contentType = value;
    } else {
      put(name, value, `header ${JSON.stringify(name.slice(0, 64))}`);
    }
  }
  if (key !== undefined) put(KEY_PROPERTY, key, 'the key');
  if (id !== '') put(ID_PROPERTY, id, 'the transport id');
  if (escaped !== undefined) userProperties[ESCAPED_PROPERTY] = escaped.join(',');
  return contentType === undefined ? { userProperties } : { userProperties, contentType };
}

export interface ReceivedProperties {
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Headers;
}

/** User properties as mqtt.js hands them over: a repeated name arrives as an array (first value wins). */
export type IncomingUserProperties = Readonly<Record<string, string | string[]>> | undefined;

/** The PUBLISH properties the adapter reads (mqtt.js' `packet.properties`). */
export interface IncomingProperties {
  readonly contentType?: string | undefined;
  readonly userProperties?: IncomingUserProperties;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function fromMqttProperties(properties: IncomingProperties | undefined): ReceivedProperties {
  const headers: Record<string, string> = {};
  let id = '';
  let key: string | undefined;
  const source = properties?.userProperties;
  if (source !== undefined) {
    const list = first(source[ESCAPED_PROPERTY]);
    const escaped = list === undefined || list === '' ? undefined : new Set(list.split(',').map(decodeURIComponent));
    for (const wireName in source) {
      const wireValue = first(source[wireName]);
      if (wireValue === undefined || wireName === ESCAPED_PROPERTY) continue;
      const isEscaped = escaped?.has(wireName) === true;
      const name = isEscaped ? unescapeValue(wireName) : wireName;
      const value = isEscaped ? unescapeValue(wireValue) : wireValue;
      if (name.startsWith(OWN_PREFIX)) {
        if (name === ID_PROPERTY) id = value;
        else if (name === KEY_PROPERTY) key = value;
      } else {
        headers[name] = value;
      }
    }
  }
  const contentType = properties?.contentType;
  if (typeof contentType === 'string') {
    for (const name of Object.keys(headers)) if (isContentType(name)) delete headers[name];
    headers[CONTENT_TYPE] = contentType;
  }
  return { id, key, headers };
}

/** UTF-8 bytes the properties take on the wire (each user property: identifier, two length-prefixed strings). */
export function propertiesBytes(properties: MqttProperties): number {
  let bytes = properties.contentType === undefined ? 0 : 3 + Buffer.byteLength(properties.contentType);
  const user = properties.userProperties;
  for (const name in user) bytes += 5 + Buffer.byteLength(name) + Buffer.byteLength(user[name]!);
  return bytes;
}
