import type { CloudEventAttributeValue } from './event.js';

const HEX = '0123456789ABCDEF';

function mustEscape(c: number): boolean {
  // HTTP binding 3.1.3.2: space, double quote, percent and anything outside printable ASCII.
  return c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x25;
}

/**
 * Percent-encodes a header value as the CloudEvents HTTP binding requires (UTF-8 octets of space,
 * `"`, `%` and every character outside U+0021-U+007E). Values that need nothing are returned as is.
 */
export function percentEncodeHeaderValue(value: string): string {
  let i = 0;
  while (i < value.length && !mustEscape(value.charCodeAt(i))) i++;
  if (i === value.length) return value;
  let out = value.slice(0, i);
  const bytes = Buffer.from(value.slice(i), 'utf8');
  for (const byte of bytes) {
    if (mustEscape(byte)) out += `%${HEX[byte >> 4]}${HEX[byte & 0x0f]}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

/**
 * Reads an attribute header value as the HTTP and NATS bindings require: first unescaped as an
 * RFC 7230 quoted-string when the whole value is one (backslash escapes processed), then one round
 * of percent-decoding. Undefined when the percent-encoding is malformed or not valid UTF-8
 * (overlong forms included) or the quoted-string is unterminated.
 */
export function percentDecodeHeaderValue(value: string): string | undefined {
  if (value.charCodeAt(0) === 0x22) {
    const unquoted = unquote(value);
    if (unquoted === undefined) return undefined;
    value = unquoted;
  }
  if (value.indexOf('%') === -1) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** The content of an RFC 7230 quoted-string (`"…"` with `\\` escapes); undefined when it is not one whole. */
function unquote(value: string): string | undefined {
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\') {
      i++;
      if (i >= value.length) return undefined;
      out += value[i];
    } else if (c === '"') {
      return i === value.length - 1 ? out : undefined;
    } else out += c;
  }
  return undefined;
}

/** The string form of an attribute value (CloudEvents type system canonical string encodings). */
export function attributeToString(value: CloudEventAttributeValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
}
