import { SwitchboardError } from './errors.js';

/**
 * Deepest nesting of arrays and objects Switchboard reads in JSON it receives: a request body, the
 * data of an event (in structured and batched mode the levels of the envelope around `data` do not
 * count, so the same data is refused or taken in every mode). RFC 8259 lets a parser limit it.
 * `JSON.parse` has no limit, but `JSON.stringify`, `structuredClone` and schema validators recurse
 * and overflow the stack a few thousand levels down, so a value nested deeper than this is refused
 * where it arrives (`SB_JSON_TOO_DEEP`) instead of failing later, somewhere that cannot answer the sender.
 */
export const JSON_MAX_DEPTH = 512;

/**
 * True when JSON text nests arrays and objects deeper than `limit`. Meant for text about to be
 * parsed: it counts brackets outside strings, it does not check the syntax. Cheap on what usually
 * arrives: text shorter than `limit`, or with at most `limit` opening brackets in all (found by the
 * engine's native `indexOf`), cannot nest that deep and is answered without a scan; only the rest is
 * walked, strings skipped with `indexOf` too.
 */
export function jsonNestsDeeperThan(text: string, limit: number = JSON_MAX_DEPTH): boolean {
  if (text.length <= limit || openingBracketsAtMost(text, limit)) return false;
  const n = text.length;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = endOfString(text, i);
      if (i === -1) return false;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

function openingBracketsAtMost(text: string, limit: number): boolean {
  let count = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++count > limit) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++count > limit) return false;
  return true;
}

/** Index of the quote that closes the string opened at `start` (escaped quotes skipped), or -1. */
function endOfString(text: string, start: number): number {
  for (let quote = text.indexOf('"', start + 1); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
  }
  return -1;
}

/** The `SB_JSON_TOO_DEEP` error for JSON nested deeper than {@link JSON_MAX_DEPTH}; `pointer` says which JSON (`/data`). */
export function jsonTooDeep(pointer?: string): SwitchboardError {
  const detail = `${pointer === undefined ? 'the JSON' : pointer} nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels`;
  return new SwitchboardError('SB_JSON_TOO_DEEP', {
    detail,
    ...(pointer === undefined ? {} : { errors: [{ pointer, message: detail }] }),
  });
}
