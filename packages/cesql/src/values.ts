import type { CloudEvent } from '@switchboard/core';
import type { CesqlType, CesqlValue } from './ast.js';

export const INT_MIN = -2147483648;
export const INT_MAX = 2147483647;

const INTEGER_TEXT = /^[+-]?[0-9]+$/;

/**
 * String → Integer (section 3.7): base 10, an optional leading `+` or `-`, digits only (no spaces),
 * within the 32-bit range. `undefined` when the text is not such an integer.
 */
export function parseInteger(text: string): number | undefined {
  if (!INTEGER_TEXT.test(text)) return undefined;
  const value = Number(text);
  if (!(value >= INT_MIN && value <= INT_MAX)) return undefined;
  return value === 0 ? 0 : value;
}

/** String → Boolean: `true` or `false` in any case; `undefined` otherwise. */
export function parseBoolean(text: string): boolean | undefined {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text.length !== 4 && text.length !== 5) return undefined;
  const lower = text.toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : undefined;
}

/** Any value → String: Integer in base 10, Boolean as `true`/`false`. Never fails. */
export function toText(value: CesqlValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return value ? 'true' : 'false';
}

export function typeOf(value: CesqlValue): CesqlType {
  return typeof value === 'string' ? 'String' : typeof value === 'number' ? 'Integer' : 'Boolean';
}

/** The zero value of a type (section 3.1). */
export function zeroOf(type: CesqlType): CesqlValue {
  return type === 'String' ? '' : type === 'Integer' ? 0 : false;
}

/** The core context attributes every valid event has (section 3.4.4: `EXISTS` is always true for them). */
export const REQUIRED_ATTRIBUTES: ReadonlySet<string> = new Set(['specversion', 'id', 'source', 'type']);
/** The optional core context attributes. */
export const OPTIONAL_CORE_ATTRIBUTES: ReadonlySet<string> = new Set(['datacontenttype', 'dataschema', 'subject', 'time']);

/**
 * Reads an attribute as a CESQL value, or `undefined` when the event does not have it. Core
 * attributes are the event's own members, extensions live in `extensions`. A value outside the CESQL
 * types is represented as a String (section 3.2): a number that is not a 32-bit integer in its
 * decimal form, Binary (`Uint8Array`) in base64 as the CloudEvents type system writes it. `data` is
 * not an attribute (CESQL does not address data).
 */
export type AttributeReader = (event: CloudEvent) => CesqlValue | undefined;

export function attributeReader(name: string): AttributeReader {
  switch (name) {
    case 'specversion':
      return (event) => event.specversion;
    case 'id':
      return (event) => event.id;
    case 'source':
      return (event) => event.source;
    case 'type':
      return (event) => event.type;
    case 'datacontenttype':
      return (event) => event.datacontenttype;
    case 'dataschema':
      return (event) => event.dataschema;
    case 'subject':
      return (event) => event.subject;
    case 'time':
      return (event) => event.time;
    default:
      return (event) => {
        const extensions = event.extensions;
        if (extensions === undefined || !Object.hasOwn(extensions, name)) return undefined;
        return asCesqlValue(extensions[name]);
      };
  }
}

function asCesqlValue(value: unknown): CesqlValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX ? value + 0 : String(value);
    case 'undefined':
      return undefined;
    default:
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      return value === null ? undefined : String(value);
  }
}

/** Number of characters (Unicode code points) in a string. */
export function codePointLength(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        length--;
        i++;
      }
    }
  }
  return length;
}
