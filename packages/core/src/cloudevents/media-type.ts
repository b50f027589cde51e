/** Just enough RFC 9110 media-type parsing for content negotiation of CloudEvents. */

export interface MediaType {
  /** `type/subtype`, lower-cased, without parameters. */
  readonly essence: string;
  /** The `charset` parameter, lower-cased, if any. */
  readonly charset: string | undefined;
}

function isTokenChar(c: number): boolean {
  // RFC 9110 tchar
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  switch (c) {
    case 0x21:
    case 0x23:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0x27:
    case 0x2a:
    case 0x2b:
    case 0x2d:
    case 0x2e:
    case 0x5e:
    case 0x5f:
    case 0x60:
    case 0x7c:
    case 0x7e:
      return true;
    default:
      return false;
  }
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Parses `type/subtype *( OWS ";" OWS name=value )`. Returns undefined when the value is not a
 * media type. Only `charset` is kept; other parameters are checked for syntax and skipped.
 */
export function parseMediaType(value: string): MediaType | undefined {
  let i = 0;
  const n = value.length;
  while (i < n && isWhitespace(value.charCodeAt(i))) i++;
  const start = i;
  while (i < n && isTokenChar(value.charCodeAt(i))) i++;
  if (i === start || value.charCodeAt(i) !== 0x2f) return undefined;
  i++;
  const subtypeStart = i;
  while (i < n && isTokenChar(value.charCodeAt(i))) i++;
  if (i === subtypeStart) return undefined;
  const essence = value.slice(start, i).toLowerCase();
  let charset: string | undefined;
  for (;;) {
    while (i < n && isWhitespace(value.charCodeAt(i))) i++;
    if (i === n) return { essence, charset };
    if (value.charCodeAt(i) !== 0x3b) return undefined;
    i++;
    while (i < n && isWhitespace(value.charCodeAt(i))) i++;
    if (i === n) return { essence, charset };
    const nameStart = i;
    while (i < n && isTokenChar(value.charCodeAt(i))) i++;
    if (i === nameStart || value.charCodeAt(i) !== 0x3d) return undefined;
    const name = value.slice(nameStart, i).toLowerCase();
    i++;
    let parameter: string;
    if (value.charCodeAt(i) === 0x22) {
      i++;
      let quoted = '';
      for (;;) {
        if (i >= n) return undefined;
        const c = value.charCodeAt(i);
        if (c === 0x22) break;
        if (c === 0x5c) i++;
        quoted += value.charAt(i);
        i++;
      }
      i++;
      parameter = quoted;
    } else {
      const valueStart = i;
      while (i < n && isTokenChar(value.charCodeAt(i))) i++;
      if (i === valueStart) return undefined;
      parameter = value.slice(valueStart, i);
    }
    if (name === 'charset' && charset === undefined) charset = parameter.toLowerCase();
  }
}

/** `application/json`, `text/json` and any `+json` structured syntax suffix. */
export function isJsonEssence(essence: string): boolean {
  return essence === 'application/json' || essence === 'text/json' || essence.endsWith('+json');
}

/** `text/*`, `application/xml` and any `+xml` suffix: data that is text in a charset. */
export function isTextEssence(essence: string): boolean {
  return essence.startsWith('text/') || essence === 'application/xml' || essence.endsWith('+xml');
}

/** True when a charset label names UTF-8 (case-insensitive; `utf8` accepted too). */
export function isUtf8Charset(charset: string): boolean {
  return charset === 'utf-8' || charset === 'utf8';
}
