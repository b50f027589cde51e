import { compileExpression, compileFilter, type Expression, formatExpression, parse } from '@switchboard/cesql';
import { isSwitchboardError, type SwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

function failure(run: () => unknown): SwitchboardError {
  try {
    run();
  } catch (error) {
    if (isSwitchboardError(error, 'SB_FILTER_INVALID')) return error;
    throw error;
  }
  throw new Error('expected SB_FILTER_INVALID');
}

/** The tree without offsets, as a compact string, to compare shapes. */
function shape(node: Expression): string {
  switch (node.kind) {
    case 'literal':
      return JSON.stringify(node.value);
    case 'attribute':
      return node.name;
    case 'exists':
      return `(EXISTS ${node.name})`;
    case 'not':
      return `(NOT ${shape(node.operand)})`;
    case 'negate':
      return `(- ${shape(node.operand)})`;
    case 'binary':
      return `(${shape(node.left)} ${node.operator} ${shape(node.right)})`;
    case 'like':
      return `(${shape(node.operand)} ${node.negated ? 'NOT LIKE' : 'LIKE'} ${JSON.stringify(node.pattern)})`;
    case 'in':
      return `(${shape(node.operand)} ${node.negated ? 'NOT IN' : 'IN'} ${node.set.map(shape).join(' ')})`;
    case 'call':
      return `${node.name}(${node.args.map(shape).join(' ')})`;
  }
}

describe('parse: errors carry the position', () => {
  it.each([
    ['ABC(', 4, 1, 5, /Expected .*end of the expression/],
    ["subject LIKE 'orders/%' AND priority >", 38, 1, 39, /Expected an expression/],
    ['x LIKE 123', 7, 1, 8, /LIKE takes a string literal pattern/],
    ["type = 'a'\n  AND (source = 'b'", 30, 2, 20, /Expected '\)' to close the '\(' at line 2, column 7/],
    ["'abc", 0, 1, 1, /Unterminated string literal/],
    ['a ! b', 2, 1, 3, /Unexpected character '!'/],
    ['a = 2147483648', 4, 1, 5, /outside the 32-bit range/],
    ['a_b = 1', 0, 1, 1, /not an attribute name/],
    ['a1_b = 1', 0, 1, 1, /neither an attribute name/],
    ['x NOT = 1', 6, 1, 7, /Expected LIKE or IN after NOT/],
    ['x IN ()', 6, 1, 7, /Expected an expression/],
    ['EXISTS 5', 7, 1, 8, /EXISTS takes an attribute name/],
    ['a = 1 b', 6, 1, 7, /after a complete expression/],
    ['', 0, 1, 1, /empty/],
    ['+a', 0, 1, 1, /no unary plus/],
    ['1abc(2)', 0, 1, 1, /not a function name/],
  ])('%j', (text, offset, line, column, message) => {
    const error = failure(() => parse(text));
    expect(error.extensions).toMatchObject({ offset, line, column, reason: 'parse' });
    expect(error.detail).toMatch(message);
    expect(error.detail).toContain(`(line ${line}, column ${column})`);
    expect(error.status).toBe(400);
    expect(error.toProblem().type).toBe('urn:switchboard:error:filter-invalid');
  });

  it('compileFilter refuses an unknown function and a wrong arity at compile time, with the call position', () => {
    const unknown = failure(() => compileFilter("type = 'a' AND FOO(subject)"));
    expect(unknown.extensions).toMatchObject({ offset: 15, line: 1, column: 16, reason: 'missingFunction' });
    expect(unknown.detail).toMatch(/Unknown function FOO/);
    const arity = failure(() => compileFilter('\n  LEFT(subject) = 1'));
    expect(arity.extensions).toMatchObject({ offset: 3, line: 2, column: 3, reason: 'missingFunction' });
    expect(arity.detail).toMatch(/LEFT takes 2 arguments, not 1/);
    expect(failure(() => compileFilter('SUBSTRING(subject)')).detail).toMatch(/SUBSTRING takes 2 or 3 arguments, not 1/);
    expect(failure(() => compileFilter('CONCAT_WS()')).detail).toMatch(/CONCAT_WS takes at least 1 argument/);
  });

  it('compileExpression (spec-exact) reports an unknown function when evaluated, not when compiled', () => {
    const compiled = compileExpression('FOO(1) = 1');
    const result = compiled.evaluate({ specversion: '1.0', id: '1', source: 's', type: 't' });
    expect(result.value).toBe(false);
    expect(result.errors.map((e) => e.kind)).toEqual(['missingFunction']);
    expect(result.errors[0]).toMatchObject({ start: 0, end: 6 });
  });

  it('compileFilter refuses AND/OR mixed without parentheses, at the second operator', () => {
    const error = failure(() => compileFilter("type = 'a' OR type = 'b' AND priority > 2"));
    expect(error.extensions).toMatchObject({ offset: 25, column: 26 });
    expect(error.detail).toMatch(/OR and AND have the same precedence/);
    expect(() => compileFilter("(type = 'a' OR type = 'b') AND priority > 2")).not.toThrow();
    expect(() => compileFilter("type = 'a' OR (type = 'b' AND priority > 2)")).not.toThrow();
    expect(() => compileFilter("type = 'a' AND source = 'b' AND priority > 2")).not.toThrow();
    // The spec-exact form takes it, grouped left to right.
    expect(shape(parse('a OR b AND c'))).toBe('((a OR b) AND c)');
  });
});

describe('parse: precedence and grouping (section 3.6)', () => {
  it.each([
    ['4 * 2 + 4 / 2', '((4 * 2) + (4 / 2))'],
    ['1 - 2 - 3', '((1 - 2) - 3)'],
    ['a AND b OR c XOR d', '(((a AND b) OR c) XOR d)'],
    ['NOT a = b', '((NOT a) = b)'],
    ['NOT EXISTS time', '(NOT (EXISTS time))'],
    ["a LIKE 'x' = TRUE", '((a LIKE "x") = true)'],
    ['1 + 2 IN (3)', '(1 + (2 IN 3))'],
    ["x NOT LIKE 'a%' AND y NOT IN (1, 2)", '((x NOT LIKE "a%") AND (y NOT IN 1 2))'],
    ['-a * 2', '((- a) * 2)'],
    ['--10', '(- -10)'],
    ['- 10', '(- 10)'],
    ['4-1', '(4 - 1)'],
    ['4 -1', '(4 - 1)'],
    ['-2147483648', '-2147483648'],
    ['+5', '5'],
    ['int(hop) < INT(ttl)', '(INT(hop) < INT(ttl))'],
    ['SOURCE', 'source'],
    ['1abc = abc1', '(1abc = abc1)'],
    ['concat_ws(",", a)', 'CONCAT_WS("," a)'],
    ['\'it\'\'s\' = "say \\"hi\\""', '("it\'s" = "say \\"hi\\"")'],
    ["'a\\b\\'c'", '"a\\\\b\'c"'],
    ['tRuE AnD FaLsE', '(true AND false)'],
  ])('%s', (text, expected) => {
    expect(shape(parse(text))).toBe(expected);
  });

  it('records offsets of each node', () => {
    const ast = parse("  subject LIKE 'a%'  ");
    expect(ast).toMatchObject({ kind: 'like', start: 2, end: 19, operand: { kind: 'attribute', start: 2, end: 9 } });
  });

  it('prints a tree back to text that parses to the same tree', () => {
    for (const text of ["NOT (a = 'x') OR b IN (1, -2, 'c') AND - (3) > ABS(-4)", "x NOT LIKE 'a\\%b_%'", '"a\\\'b"']) {
      expect(shape(parse(formatExpression(parse(text))))).toBe(shape(parse(text)));
    }
  });
});
