import { BUILTIN_FUNCTIONS, compileExpression, type Expression, formatExpression, parse } from '@switchboard/cesql';
import { type CloudEvent, isSwitchboardError } from '@switchboard/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** The tree without offsets. */
function strip(node: Expression): unknown {
  return JSON.parse(JSON.stringify(node, (key, value) => (key === 'start' || key === 'end' ? undefined : value)));
}

function parsesOrFailsCleanly(text: string): Expression | undefined {
  try {
    return parse(text);
  } catch (error) {
    if (isSwitchboardError(error, 'SB_FILTER_INVALID') && typeof error.extensions.offset === 'number') return undefined;
    throw error;
  }
}

const TOKENS = [
  'a',
  'subject',
  'Type',
  'x1',
  '1x',
  '0',
  '7',
  '2147483647',
  '2147483648',
  "'s'",
  '"d"',
  "'it''s'",
  "'a\\'b'",
  "'%_\\%'",
  "'",
  '"',
  'TRUE',
  'false',
  'NOT',
  'AND',
  'OR',
  'XOR',
  'LIKE',
  'IN',
  'EXISTS',
  '(',
  ')',
  ',',
  '=',
  '!=',
  '<>',
  '<',
  '<=',
  '>',
  '>=',
  '+',
  '-',
  '*',
  '/',
  '%',
  '!',
  'ABS',
  'CONCAT_WS',
  'substring',
  'FOO',
  'a_b',
  '\n',
];

const tokenSoup = fc
  .array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 14 })
  .chain((tokens) =>
    fc
      .array(fc.constantFrom(' ', '', '  '), { minLength: tokens.length, maxLength: tokens.length })
      .map((gaps) => tokens.map((token, i) => token + (gaps[i] as string)).join('')),
  );

const attributeValue = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constantFrom('5', 'TRUE', '-0', 's'));
const event = fc
  .record({
    subject: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
    extensions: fc.dictionary(fc.constantFrom('a', 'x1', '1x', 'd'), attributeValue, { maxKeys: 4 }),
  })
  .map(({ subject, extensions }) => ({
    specversion: '1.0' as const,
    id: 'id',
    source: 'src',
    type: 't',
    ...(subject === undefined ? {} : { subject }),
    extensions,
  }));

describe('parser properties', () => {
  it('throws nothing but SB_FILTER_INVALID (with a position) on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        parsesOrFailsCleanly(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('throws nothing but SB_FILTER_INVALID on token soup, and what parses prints back to the same tree', () => {
    let parsed = 0;
    fc.assert(
      fc.property(tokenSoup, (text) => {
        const ast = parsesOrFailsCleanly(text);
        if (ast === undefined) return;
        parsed++;
        expect(strip(parse(formatExpression(ast)))).toEqual(strip(ast));
      }),
      { numRuns: 5000 },
    );
    // The property is about parsed expressions: make sure a fair share of the soup parsed.
    expect(parsed).toBeGreaterThan(100);
  });

  it('evaluation is total: any parsed expression on any event gives a value and at most one error', () => {
    fc.assert(
      fc.property(tokenSoup, event, (text, e) => {
        const ast = parsesOrFailsCleanly(text);
        if (ast === undefined) return;
        const { value, errors } = compileExpression(text).evaluate(e as CloudEvent);
        expect(['string', 'number', 'boolean']).toContain(typeof value);
        if (typeof value === 'number') expect(Number.isInteger(value) && value >= -2147483648 && value <= 2147483647).toBe(true);
        expect(errors.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 3000 },
    );
  });
});

// ASTs built directly, so every node kind and nesting is covered, not only what token soup reaches.
const name = fc
  .stringMatching(/^[a-z0-9]{1,6}$/)
  .filter((n) => !/^[0-9]+$/.test(n) && !['and', 'or', 'xor', 'not', 'like', 'in', 'exists', 'true', 'false'].includes(n));
const text = fc.string({ unit: fc.constantFrom('a', "'", '"', '\\', '%', '_', ' ', 'é', '😀'), maxLength: 6 });
const at = { start: 0, end: 0 };
const { expression } = fc.letrec<{ expression: Expression }>((tie) => ({
  expression: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(fc.integer({ min: -2147483648, max: 2147483647 }), fc.boolean(), text).map((value) => ({ kind: 'literal', value, ...at })),
    name.map((n) => ({ kind: 'attribute', name: n, ...at })),
    name.map((n) => ({ kind: 'exists', name: n, ...at })),
    tie('expression').map((operand) => ({ kind: 'not', operand, ...at })),
    tie('expression').map((operand) => ({ kind: 'negate', operand, ...at })),
    fc
      .record({
        operator: fc.constantFrom('AND', 'OR', 'XOR', '=', '!=', '<>', '<', '<=', '>', '>=', '+', '-', '*', '/', '%'),
        left: tie('expression'),
        right: tie('expression'),
      })
      .map((r) => ({ kind: 'binary', ...r, ...at })),
    fc.record({ operand: tie('expression'), pattern: text, negated: fc.boolean() }).map((r) => ({ kind: 'like', ...r, ...at })),
    fc
      .record({ operand: tie('expression'), set: fc.array(tie('expression'), { minLength: 1, maxLength: 3 }), negated: fc.boolean() })
      .map((r) => ({ kind: 'in', ...r, ...at })),
    fc
      .record({ name: fc.constantFrom(...Object.keys(BUILTIN_FUNCTIONS), 'MY_FN'), args: fc.array(tie('expression'), { maxLength: 3 }) })
      .map((r) => ({ kind: 'call', ...r, ...at })),
  ) as fc.Arbitrary<Expression>,
}));

function printable(node: Expression): string | undefined {
  try {
    return formatExpression(node);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

describe('printer properties', () => {
  it('printing any tree and parsing it back gives the same tree', () => {
    fc.assert(
      fc.property(expression, (ast) => {
        const printed = printable(ast);
        fc.pre(printed !== undefined);
        expect(strip(parse(printed as string))).toEqual(strip(ast));
      }),
      { numRuns: 3000 },
    );
  });

  it('only strings no literal can spell fail to print: ending in a backslash, or with both \\\' and \\"', () => {
    fc.assert(
      fc.property(text, (value) => {
        const ok = printable({ kind: 'literal', value, ...at }) !== undefined;
        const unspellable = /(^|[^\\])(\\\\)*\\$/.test(value) || (hasEscapedQuote(value, "'") && hasEscapedQuote(value, '"'));
        expect(ok).toBe(!unspellable);
      }),
      { numRuns: 3000 },
    );
  });
});

/** Whether an unpaired backslash of `value` (pairing from the left) stands right before `quote`. */
function hasEscapedQuote(value: string, quote: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') {
      if (value[i + 1] === quote) return true;
      i++;
    }
  }
  return false;
}
