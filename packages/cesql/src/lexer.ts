import { filterError } from './errors.js';

/**
 * Tokens of CESQL v1, after the spec's EBNF and its reference ANTLR lexer (`CESQLLexer.g4`):
 * keywords are case-insensitive, white space is space, tab, CR and LF, a string literal is `'...'` or
 * `"..."` where a backslash pairs with the next character (`\'` in a `'...'` literal and `\"` in a
 * `"..."` literal stand for the quote, any other pair is kept as written) and a doubled quote stands
 * for one quote.
 */
export type TokenKind =
  | 'integer'
  | 'string'
  | 'identifier'
  | 'function-name'
  | 'keyword'
  | '('
  | ')'
  | ','
  | '='
  | '!='
  | '<>'
  | '<'
  | '<='
  | '>'
  | '>='
  | '+'
  | '-'
  | '*'
  | '/'
  | '%'
  | 'eof';

export type Keyword = 'AND' | 'OR' | 'XOR' | 'NOT' | 'LIKE' | 'EXISTS' | 'IN' | 'TRUE' | 'FALSE';

export interface Token {
  readonly kind: TokenKind;
  /** The text as written. */
  readonly text: string;
  /** Keyword upper-cased; identifier as written; string literal's value; integer's digits. */
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

const KEYWORDS: ReadonlySet<string> = new Set(['AND', 'OR', 'XOR', 'NOT', 'LIKE', 'EXISTS', 'IN', 'TRUE', 'FALSE']);

function isWordChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;
}

/** Splits `text` into tokens, ending with one `eof` token. Throws `SB_FILTER_INVALID` at the first bad character. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    const start = i;
    if (isWordChar(c)) {
      while (i < n && isWordChar(text.charCodeAt(i))) i++;
      const word = text.slice(start, i);
      tokens.push(classifyWord(text, word, start, i));
      continue;
    }
    if (c === 39 || c === 34) {
      const [value, end] = readString(text, start);
      tokens.push({ kind: 'string', text: text.slice(start, end), value, start, end });
      i = end;
      continue;
    }
    const next = i + 1 < n ? text[i + 1] : '';
    const ch = text[i] as string;
    let op: TokenKind | undefined;
    if (ch === '!' && next === '=') op = '!=';
    else if (ch === '<' && next === '>') op = '<>';
    else if (ch === '<' && next === '=') op = '<=';
    else if (ch === '>' && next === '=') op = '>=';
    if (op !== undefined) {
      tokens.push({ kind: op, text: op, value: op, start, end: start + 2 });
      i += 2;
      continue;
    }
    if ('()=<>+-*/%,'.includes(ch)) {
      tokens.push({ kind: ch as TokenKind, text: ch, value: ch, start, end: start + 1 });
      i++;
      continue;
    }
    const shown = ch === '!' ? "'!' (not-equal is written != or <>)" : describeChar(text, i);
    throw filterError(text, start, `Unexpected character ${shown}`);
  }
  tokens.push({ kind: 'eof', text: '', value: '', start: n, end: n });
  return tokens;
}

function describeChar(text: string, i: number): string {
  const code = text.codePointAt(i) ?? 0;
  if (code < 32 || code === 127) return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  return `'${String.fromCodePoint(code)}'`;
}

function classifyWord(text: string, word: string, start: number, end: number): Token {
  if (/^[0-9]+$/.test(word)) return { kind: 'integer', text: word, value: word, start, end };
  const upper = word.toUpperCase();
  if (KEYWORDS.has(upper)) return { kind: 'keyword', text: word, value: upper, start, end };
  if (/^[A-Za-z0-9]+$/.test(word)) return { kind: 'identifier', text: word, value: word, start, end };
  if (/^[A-Za-z][A-Za-z_]*$/.test(word)) return { kind: 'function-name', text: word, value: word, start, end };
  throw filterError(
    text,
    start,
    `'${word}' is neither an attribute name (letters and digits) nor a function name (a letter, then letters and underscores)`,
  );
}

/** Reads the string literal starting at `start` (on its quote); returns its value and the offset past it. */
function readString(text: string, start: number): [string, number] {
  const quote = text[start] as string;
  let value = '';
  let i = start + 1;
  const n = text.length;
  while (i < n) {
    const ch = text[i] as string;
    if (ch === '\\' && i + 1 < n) {
      const next = text[i + 1] as string;
      value += next === quote ? quote : ch + next;
      i += 2;
      continue;
    }
    if (ch === quote) {
      if (text[i + 1] === quote) {
        value += quote;
        i += 2;
        continue;
      }
      return [value, i + 1];
    }
    value += ch;
    i++;
  }
  throw filterError(text, start, `Unterminated string literal (no closing ${quote})`);
}
