import type { CesqlValue, Expression } from './ast.js';

/**
 * Prints an AST back as CESQL text that parses to the same tree (offsets aside). Every operand that
 * is not an atom is parenthesised, so the text never depends on precedence or grouping rules.
 * Throws a `RangeError` for a string no CESQL literal can spell (one ending in a backslash, or with
 * both `\'` and `\"` in it); strings read by the parser never are.
 */
export function formatExpression(node: Expression): string {
  switch (node.kind) {
    case 'literal':
      return formatLiteral(node.value);
    case 'attribute':
      return node.name;
    case 'exists':
      return `EXISTS ${node.name}`;
    case 'not':
      return `NOT ${operand(node.operand)}`;
    case 'negate':
      // `-(5)`, not `-5`: a minus sign right before digits would read as part of the literal.
      return `-(${formatExpression(node.operand)})`;
    case 'binary':
      return `${operand(node.left)} ${node.operator} ${operand(node.right)}`;
    case 'like':
      return `${operand(node.operand)} ${node.negated ? 'NOT LIKE' : 'LIKE'} ${formatString(node.pattern)}`;
    case 'in':
      return `${operand(node.operand)} ${node.negated ? 'NOT IN' : 'IN'} (${node.set.map(formatExpression).join(', ')})`;
    case 'call':
      return `${node.name}(${node.args.map(formatExpression).join(', ')})`;
  }
}

function operand(node: Expression): string {
  const text = formatExpression(node);
  return node.kind === 'literal' || node.kind === 'attribute' || node.kind === 'call' ? text : `(${text})`;
}

function formatLiteral(value: CesqlValue): string {
  if (typeof value === 'string') return formatString(value);
  if (typeof value === 'number') return String(value);
  return value ? 'TRUE' : 'FALSE';
}

/** A string literal for `value`: single-quoted if it can be, else double-quoted. */
export function formatString(value: string): string {
  return quoteWith(value, "'") ?? quoteWith(value, '"') ?? unspellable(value);
}

function unspellable(value: string): never {
  throw new RangeError(`No CESQL string literal spells ${JSON.stringify(value)}`);
}

/**
 * In a literal a backslash always pairs with the next character, and `\q` stands for the quote `q`:
 * so a backslash of the value must be followed by a character other than the quote, and is written
 * with it as a pair; a quote is written `\q`.
 */
function quoteWith(value: string, quote: string): string | undefined {
  let out = quote;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (ch === '\\') {
      const next = value[i + 1];
      if (next === undefined || next === quote) return undefined;
      out += ch + next;
      i++;
    } else if (ch === quote) {
      out += `\\${quote}`;
    } else {
      out += ch;
    }
  }
  return out + quote;
}
