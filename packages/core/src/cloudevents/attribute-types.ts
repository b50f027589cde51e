/**
 * Checks for the CloudEvents 1.0 type system. Plain loops over char codes: these run for every
 * attribute of every message received.
 */

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * Why a String is not a CloudEvents String (control characters U+0000-U+001F and U+007F-U+009F,
 * lone surrogates, noncharacters), or undefined when it is one.
 */
export function stringProblem(value: string): string | undefined {
  // Nearly every attribute is printable ASCII: one regex pass (which flattens a concatenated
  // string once) settles it; only other strings take the per-character walk.
  if (PRINTABLE_ASCII.test(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) continue;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return `contains the control character U+${hex4(c)} at index ${i}`;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return `contains a lone surrogate at index ${i}`;
      const code = ((c - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
      if ((code & 0xfffe) === 0xfffe) return `contains the noncharacter U+${code.toString(16).toUpperCase()} at index ${i}`;
      i++;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return `contains a lone surrogate at index ${i}`;
    if ((c >= 0xfdd0 && c <= 0xfdef) || c === 0xfffe || c === 0xffff) return `contains the noncharacter U+${hex4(c)} at index ${i}`;
  }
  return undefined;
}

function hex4(c: number): string {
  return c.toString(16).toUpperCase().padStart(4, '0');
}

function isAlpha(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** RFC 3986 characters allowed in a URI outside of percent-encoding: unreserved and reserved. */
function isUriChar(c: number): boolean {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    // unreserved
    case 0x2d: // -
    case 0x2e: // .
    case 0x5f: // _
    case 0x7e: // ~
    // gen-delims
    case 0x3a: // :
    case 0x2f: // /
    case 0x3f: // ?
    case 0x23: // #
    case 0x5b: // [
    case 0x5d: // ]
    case 0x40: // @
    // sub-delims
    case 0x21: // !
    case 0x24: // $
    case 0x26: // &
    case 0x27: // '
    case 0x28: // (
    case 0x29: // )
    case 0x2a: // *
    case 0x2b: // +
    case 0x2c: // ,
    case 0x3b: // ;
    case 0x3d: // =
      return true;
    default:
      return false;
  }
}

/** Length of the scheme (without `:`) if `value` starts with `scheme ":"`, else 0. */
function schemeLength(value: string): number {
  if (value.length === 0 || !isAlpha(value.charCodeAt(0))) return 0;
  for (let i = 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x3a) return i;
    if (!(isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e)) return 0;
  }
  return 0;
}

/** Why `value` is not an RFC 3986 URI-reference, or undefined when it is one. */
export function uriReferenceProblem(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  let fragment = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25) {
      if (!isHex(value.charCodeAt(i + 1)) || !isHex(value.charCodeAt(i + 2))) return `has a malformed percent-encoding at index ${i}`;
      i += 2;
      continue;
    }
    if (c === 0x23) {
      if (fragment) return `has a second "#" at index ${i}`;
      fragment = true;
      continue;
    }
    if (!isUriChar(c)) return `has the character ${JSON.stringify(value[i])} at index ${i}, which a URI must percent-encode`;
  }
  if (schemeLength(value) === 0) {
    // A relative reference: its first path segment must not contain ":" (RFC 3986 path-noscheme).
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x2f || c === 0x3f || c === 0x23) break;
      if (c === 0x3a) return 'has a ":" before any "/" but does not start with a valid scheme';
    }
  }
  return undefined;
}

/** Why `value` is not an absolute RFC 3986 URI, or undefined when it is one. */
export function uriProblem(value: string): string | undefined {
  const problem = uriReferenceProblem(value);
  if (problem) return problem;
  if (schemeLength(value) === 0) return 'must be an absolute URI with a scheme';
  return undefined;
}

function digits(value: string, start: number, count: number): number {
  let n = 0;
  for (let i = start; i < start + count; i++) {
    const c = value.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Why `value` is not an RFC 3339 `date-time`, or undefined when it is one. */
export function timestampProblem(value: string): string | undefined {
  const bad = 'must be an RFC 3339 timestamp such as 2018-04-05T17:31:00Z';
  if (value.length < 20) return bad;
  const year = digits(value, 0, 4);
  const month = digits(value, 5, 2);
  const day = digits(value, 8, 2);
  const hour = digits(value, 11, 2);
  const minute = digits(value, 14, 2);
  const second = digits(value, 17, 2);
  const t = value.charCodeAt(10);
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > daysInMonth(year, month) ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60 ||
    value.charCodeAt(4) !== 0x2d ||
    value.charCodeAt(7) !== 0x2d ||
    (t !== 0x54 && t !== 0x74) ||
    value.charCodeAt(13) !== 0x3a ||
    value.charCodeAt(16) !== 0x3a
  ) {
    return bad;
  }
  let i = 19;
  if (value.charCodeAt(i) === 0x2e) {
    i++;
    const start = i;
    while (isDigit(value.charCodeAt(i))) i++;
    if (i === start) return bad;
  }
  const zone = value.charCodeAt(i);
  if (zone === 0x5a || zone === 0x7a) return i + 1 === value.length ? undefined : bad;
  if (zone !== 0x2b && zone !== 0x2d) return bad;
  const offsetHour = digits(value, i + 1, 2);
  const offsetMinute = digits(value, i + 4, 2);
  if (offsetHour < 0 || offsetHour > 23 || offsetMinute < 0 || offsetMinute > 59 || value.charCodeAt(i + 3) !== 0x3a) return bad;
  return i + 6 === value.length ? undefined : bad;
}

/** A CloudEvents Integer: a whole number in the signed 32-bit range. */
export function isCloudEventInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

/** Parses the canonical string form of an Integer (`-`? digits, no leading `+`), or undefined. */
export function parseCloudEventInteger(value: string): number | undefined {
  if (value.length === 0 || value.length > 11) return undefined;
  let i = value.charCodeAt(0) === 0x2d ? 1 : 0;
  if (i === value.length) return undefined;
  for (; i < value.length; i++) if (!isDigit(value.charCodeAt(i))) return undefined;
  const n = Number(value);
  return isCloudEventInteger(n) ? n : undefined;
}

/** Extension attribute names: lower-case ASCII letters and digits only. */
export function isExtensionName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || isDigit(c))) return false;
  }
  return true;
}

/** True when `value` is canonical base64 (RFC 4648 section 4, with padding). */
export function isBase64(value: string): boolean {
  if (value.length % 4 !== 0) return false;
  let end = value.length;
  if (value.charCodeAt(end - 1) === 0x3d) end--;
  if (value.charCodeAt(end - 1) === 0x3d) end--;
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i);
    if (!(isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2f)) return false;
  }
  return true;
}

/** A content hash as carried by the `datahash` extension. */
export interface DataHash {
  readonly algorithm: 'sha256';
  /** 64 lower-case hex digits. */
  readonly hex: string;
}

/**
 * Parses a `datahash` value: `sha256:<64 hex digits>` (the form Switchboard writes) or 64 bare hex
 * digits (read as SHA-256). Hex digits are compared lower-cased.
 */
export function parseDataHash(value: string): DataHash | undefined {
  const hex = value.startsWith('sha256:') ? value.slice(7) : value;
  if (hex.length !== 64) return undefined;
  for (let i = 0; i < 64; i++) if (!isHex(hex.charCodeAt(i))) return undefined;
  return { algorithm: 'sha256', hex: hex.toLowerCase() };
}

/** The `datahash` value Switchboard writes for a SHA-256 digest given in hex. */
export function formatDataHash(hex: string): string {
  return `sha256:${hex.toLowerCase()}`;
}
