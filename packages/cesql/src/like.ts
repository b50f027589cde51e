/**
 * CESQL `LIKE` patterns (section 3.4.3): `%` matches any run of characters (also none), `_` exactly
 * one character (a Unicode code point), `\%` and `\_` match `%` and `_`; every other character,
 * a backslash before anything else included, matches itself, case-sensitively.
 *
 * A pattern compiles once to segments between the `%`s; matching anchors the first and last
 * segments and finds each middle one leftmost, which is exact for these two wildcards and takes
 * O(length of value × length of pattern) at worst: no backtracking blow-up on hostile patterns.
 */

/** One element of a segment: a character (one code point, as a string) or `null` for `_`. */
type Item = string | null;

export interface LikePattern {
  /** The segments between unescaped `%`s; one segment means the pattern has no `%`. */
  readonly segments: readonly (readonly Item[])[];
  /** Whether any segment has a `_`. */
  readonly hasAnyOne: boolean;
}

export function parseLikePattern(pattern: string): LikePattern {
  const segments: Item[][] = [[]];
  let hasAnyOne = false;
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    const current = segments[segments.length - 1] as Item[];
    if (ch === '\\' && (chars[i + 1] === '%' || chars[i + 1] === '_')) {
      current.push(chars[i + 1] as string);
      i++;
    } else if (ch === '%') {
      segments.push([]);
    } else if (ch === '_') {
      current.push(null);
      hasAnyOne = true;
    } else {
      current.push(ch);
    }
  }
  return { segments, hasAnyOne };
}

/** Compiles a pattern to a matcher. Common shapes (exact, prefix, suffix, contains) get a direct string test. */
export function compileLike(pattern: string): (value: string) => boolean {
  const parsed = parseLikePattern(pattern);
  const { segments } = parsed;
  if (!parsed.hasAnyOne) {
    const literals = segments.map((segment) => segment.join(''));
    const first = literals[0] as string;
    if (literals.length === 1) return (value) => value === first;
    const last = literals[literals.length - 1] as string;
    if (literals.length === 2) {
      if (last === '') return first === '' ? () => true : (value) => value.startsWith(first);
      if (first === '') return (value) => value.endsWith(last);
      const min = first.length + last.length;
      return (value) => value.length >= min && value.startsWith(first) && value.endsWith(last);
    }
    const middle = literals.slice(1, -1).filter((literal) => literal !== '');
    if (first === '' && last === '' && middle.length === 1) {
      const needle = middle[0] as string;
      return (value) => value.includes(needle);
    }
    return (value) => matchLiterals(value, first, middle, last);
  }
  return (value) => matchItems(hasSurrogates(value) ? Array.from(value) : value, segments);
}

function matchLiterals(value: string, first: string, middle: readonly string[], last: string): boolean {
  if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
  let from = first.length;
  const limit = value.length - last.length;
  for (const literal of middle) {
    const at = value.indexOf(literal, from);
    if (at < 0 || at + literal.length > limit) return false;
    from = at + literal.length;
  }
  return true;
}

/** `units` holds one character per index: the string itself when it has no surrogate pairs, else its code points. */
type Units = string | readonly string[];

function matchItems(units: Units, segments: readonly (readonly Item[])[]): boolean {
  const first = segments[0] as readonly Item[];
  if (segments.length === 1) return units.length === first.length && matchesAt(units, 0, first);
  const last = segments[segments.length - 1] as readonly Item[];
  const limit = units.length - last.length;
  if (limit < first.length || !matchesAt(units, 0, first) || !matchesAt(units, limit, last)) return false;
  let from = first.length;
  for (let s = 1; s < segments.length - 1; s++) {
    const segment = segments[s] as readonly Item[];
    let at = from;
    while (at + segment.length <= limit && !matchesAt(units, at, segment)) at++;
    if (at + segment.length > limit) return false;
    from = at + segment.length;
  }
  return true;
}

function matchesAt(units: Units, at: number, segment: readonly Item[]): boolean {
  for (let i = 0; i < segment.length; i++) {
    const item = segment[i];
    if (item !== null && units[at + i] !== item) return false;
  }
  return true;
}

export function hasSurrogates(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdfff) return true;
  }
  return false;
}
