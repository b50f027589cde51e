import { isUtf8 } from 'node:buffer';
import { SwitchboardError } from '@switchboard/core';

/** Deepest nesting of arrays and objects a JSON body may have by default (as System.Text.Json). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** True when the JSON text in `bytes` nests arrays and objects deeper than `maxDepth`. */
function depthExceeded(bytes: Uint8Array, maxDepth: number): boolean {
  // Nesting deeper than `maxDepth` needs more than `maxDepth` bytes.
  if (bytes.length <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > maxDepth) return true;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/**
 * Throws `SB_JSON_TOO_DEEP` when the JSON text in `bytes` nests arrays and objects deeper than
 * `maxDepth`. One pass over the bytes, before anything parses them; brackets inside strings do not
 * count. Not a validator: malformed JSON is left for the parser to refuse. Every HTTP path that
 * parses JSON calls it (operations, job submits, the CloudEvents endpoint), because deep values
 * overflow the stack of the recursive code that runs on them after `JSON.parse` (schema
 * validation, hashing, `JSON.stringify` into a store).
 */
export function checkJsonDepth(bytes: Uint8Array, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): void {
  if (depthExceeded(bytes, maxDepth)) {
    throw new SwitchboardError('SB_JSON_TOO_DEEP', { detail: `The JSON body nests deeper than ${maxDepth} levels` });
  }
}

/** True for JSON media types: `application/json`, `application/cloudevents+json`, `…+json`, with parameters. */
export function isJsonMediaType(value: string | undefined): boolean {
  return value !== undefined && /^[\w.+-]+\/(?:[\w.-]+\+)?json\s*(?:;|$)/i.test(value);
}

/** Why a body is not acceptable JSON. */
export type JsonRefusal = 'not-utf8' | 'too-deep' | 'syntax';

/**
 * Reads a request body as JSON the way every Switchboard endpoint does: the bytes must be UTF-8
 * (RFC 8259; no silent U+FFFD replacement), nest at most `maxDepth` levels, and be valid JSON.
 */
export function readJsonBody(
  bytes: Buffer,
  maxDepth: number,
): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly refusal: JsonRefusal } {
  if (!isUtf8(bytes)) return { ok: false, refusal: 'not-utf8' };
  if (depthExceeded(bytes, maxDepth)) return { ok: false, refusal: 'too-deep' };
  try {
    return { ok: true, value: JSON.parse(bytes.toString('utf8')) };
  } catch {
    return { ok: false, refusal: 'syntax' };
  }
}

/** `readJsonBody` that throws `SB_MALFORMED_JSON` or `SB_JSON_TOO_DEEP`. */
export function parseJsonBody(bytes: Buffer, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): unknown {
  const read = readJsonBody(bytes, maxDepth);
  if (read.ok) return read.value;
  switch (read.refusal) {
    case 'not-utf8':
      throw new SwitchboardError('SB_MALFORMED_JSON', { detail: 'The request body is not valid UTF-8' });
    case 'too-deep':
      throw new SwitchboardError('SB_JSON_TOO_DEEP', { detail: `The JSON body nests deeper than ${maxDepth} levels` });
    case 'syntax':
      throw new SwitchboardError('SB_MALFORMED_JSON', { detail: 'The request body is not valid JSON' });
  }
}
