import { SwitchboardError } from './errors.js';

/**
 * Deepest nesting of arrays and objects Switchboard reads in JSON it receives: a request body, the
 * data of an event (in structured and batched mode the levels of the envelope around `data` do not
 * count, so the same data is refused or taken in every mode). RFC 8259 lets a parser limit it; `JSON.parse` has no limit, but
 * `JSON.stringify`, `structuredClone` and schema validators recurse and overflow the stack a few
 * thousand levels down, so a value nested deeper than this is refused where it arrives
 * (`SB_JSON_TOO_DEEP`) instead of failing later, somewhere that cannot answer the sender.
 */
export const JSON_MAX_DEPTH = 512;

/**
 * True when JSON text nests arrays and objects deeper than `limit`. One pass over the text that
 * skips strings; text shorter than `limit` is answered without looking at it. Meant for text about
 * to be parsed: it counts brackets, it does not check the syntax.
 */
export function jsonNestsDeeperThan(text: string, limit: number = JSON_MAX_DEPTH): boolean {
  const n = text.length;
  if (n <= limit) return false;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string, escapes included.
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** The `SB_JSON_TOO_DEEP` error for JSON nested deeper than {@link JSON_MAX_DEPTH}; `pointer` says which JSON (`/data`). */
export function jsonTooDeep(pointer?: string): SwitchboardError {
  const detail = `${pointer === undefined ? 'the JSON' : pointer} nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels`;
  return new SwitchboardError('SB_JSON_TOO_DEEP', {
    detail,
    ...(pointer === undefined ? {} : { errors: [{ pointer, message: detail }] }),
  });
}
