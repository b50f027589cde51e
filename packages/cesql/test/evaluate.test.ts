import { compileExpression, compileFilter } from '@switchboard/cesql';
import type { CloudEvent } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

const base: CloudEvent = { specversion: '1.0', id: 'id-1', source: 'svc-a', type: 'com.example.order.placed' };

function run(expression: string, event: Partial<CloudEvent> = {}) {
  const { value, errors } = compileExpression(expression).evaluate({ ...base, ...event } as CloudEvent);
  return { value, error: errors[0]?.kind };
}

describe('32-bit integers', () => {
  it.each([
    ['2147483647 + 1', 2147483647, 'math'],
    ['-2147483648 - 1', -2147483648, 'math'],
    ['65536 * 65536', 2147483647, 'math'],
    ['-2147483648 / -1', 2147483647, 'math'],
    ['-(-2147483648)', 2147483647, 'math'],
    ['-2147483648 % -1', 0, undefined],
    ['-7 / 2', -3, undefined],
    ['-7 % 3', -1, undefined],
    ['7 % -3', 1, undefined],
    ['0 * -5', 0, undefined],
    ["INT('+42')", 42, undefined],
    ["INT('2147483648')", 0, 'cast'],
    ["INT(' 1')", 0, 'cast'],
    ["'-0' + 0", 0, undefined],
  ])('%s', (expression, value, error) => {
    const result = run(expression);
    expect(result).toEqual({ value, error });
    expect(Object.is(result.value, -0)).toBe(false);
  });
});

describe('attributes and types', () => {
  it('reads extensions with their CESQL type, and anything else as a String', () => {
    const extensions = { priority: 5, flag: true, big: 2 ** 40, ratio: 1.5, blob: new Uint8Array([1, 2, 255]) };
    expect(run('priority + 1', { extensions })).toEqual({ value: 6, error: undefined });
    expect(run('flag AND TRUE', { extensions })).toEqual({ value: true, error: undefined });
    expect(run('big', { extensions })).toEqual({ value: '1099511627776', error: undefined });
    expect(run('ratio', { extensions })).toEqual({ value: '1.5', error: undefined });
    expect(run('blob', { extensions })).toEqual({ value: 'AQL/', error: undefined });
    expect(run("priority = '5'", { extensions })).toEqual({ value: true, error: undefined });
    expect(run('EXISTS priority AND NOT EXISTS other', { extensions })).toEqual({ value: true, error: undefined });
  });

  it('does not read inherited members or the data as attributes', () => {
    expect(run('constructor', { extensions: {} })).toEqual({ value: false, error: 'missingAttribute' });
    expect(run('EXISTS constructor')).toEqual({ value: false, error: undefined });
    expect(run('EXISTS data', { data: { a: 1 } })).toEqual({ value: false, error: undefined });
  });

  it('an Integer is not implicitly a Boolean (TCK "Invalid int cast"), explicitly it is', () => {
    expect(run('NOT 10')).toEqual({ value: true, error: 'cast' });
    expect(run('BOOL(10)')).toEqual({ value: true, error: undefined });
    expect(run('1 = TRUE')).toEqual({ value: false, error: 'cast' });
    expect(run('TRUE = 1')).toEqual({ value: true, error: undefined });
  });
});

describe('strings count characters, not UTF-16 units', () => {
  it.each([
    ["LENGTH('a😀b')", 3],
    ["LEFT('😀😀x', 2)", '😀😀'],
    ["RIGHT('x😀', 1)", '😀'],
    ["SUBSTRING('a😀b', 2, 1)", '😀'],
    ["SUBSTRING('a😀b', -1)", 'b'],
    ["'😀' LIKE '_'", true],
    ["'a😀b' LIKE 'a_b'", true],
    ["'a😀b' LIKE 'a__b'", false],
    ["TRIM('\u00a0\u2003x\u0085 ')", 'x'],
    ["TRIM('\ufeffx')", '\ufeffx'],
    ["CONCAT_WS('-', 'a', 1, TRUE)", 'a-1-true'],
    ["IS_INT('-12') AND NOT IS_INT('1.5') AND IS_BOOL('False')", true],
    ["UPPER('straße')", 'STRASSE'],
  ])('%s', (expression, value) => {
    expect(run(expression)).toEqual({ value, error: undefined });
  });
});

describe('LIKE', () => {
  it.each([
    ["'abc' LIKE 'a%%c'", true],
    ["'abc' LIKE '%'", true],
    ["'' LIKE '%'", true],
    ["'' LIKE '_'", false],
    ["'a\\b' LIKE 'a\\b'", true],
    ["'a%' LIKE 'a\\%'", true],
    ["'ab' LIKE 'a\\%'", false],
    ["'x.y.z' LIKE '%.%.%'", true],
    ["'x.y' LIKE '%.%.%'", false],
    ["'aXbXc' LIKE '%b%c'", true],
    ["'abcabc' LIKE '%ab_'", true],
    ["'aaa' LIKE '%a_a%'", true],
    ["'line\nbreak' LIKE 'line_break'", true],
  ])('%s', (expression, value) => {
    expect(run(expression)).toEqual({ value, error: undefined });
  });

  it('takes time linear-ish in the input on a pattern that would make a backtracking regex explode', () => {
    const value = `${'a'.repeat(20_000)}b`;
    const compiled = compileExpression(`subject LIKE '${'%a'.repeat(30)}%c'`);
    expect(compiled.evaluate({ ...base, subject: value }).value).toBe(false);
  });
});

describe('IN', () => {
  it.each([
    ["'1' IN (1, 2)", true, undefined],
    ["1 IN ('a', 1)", false, 'cast'],
    ["1 IN (1, 'a')", true, undefined],
    ['2 NOT IN (1, 3)', true, undefined],
    ['missing IN (1)', false, 'missingAttribute'],
    ['missing NOT IN (1)', false, 'missingAttribute'],
    ['1 IN (missing, 1)', false, 'missingAttribute'],
    ['1 IN (1, missing)', true, undefined],
    ["type IN (source, 'com.example.order.placed')", true, undefined],
  ])('%s', (expression, value, error) => {
    expect(run(expression)).toEqual({ value, error });
  });
});

describe('matches: the subscription verdict', () => {
  const filter = compileFilter("subject LIKE 'orders/%' AND priority > 2");

  it('is true only for the Boolean true without errors', () => {
    expect(filter.matches({ ...base, subject: 'orders/1', extensions: { priority: 3 } })).toBe(true);
    expect(filter.matches({ ...base, subject: 'orders/1', extensions: { priority: '7' } })).toBe(true);
    expect(filter.matches({ ...base, subject: 'orders/1', extensions: { priority: 2 } })).toBe(false);
    expect(filter.matches({ ...base, subject: 'carts/1', extensions: { priority: 9 } })).toBe(false);
    // Missing attribute, failed cast: errors, so no match.
    expect(filter.matches({ ...base, subject: 'orders/1' })).toBe(false);
    expect(filter.matches({ ...base, subject: 'orders/1', extensions: { priority: 'high' } })).toBe(false);
    expect(compileFilter("'true'").matches(base)).toBe(false);
    expect(compileFilter('1').matches(base)).toBe(false);
    expect(compileFilter('TRUE').matches(base)).toBe(true);
  });

  it('an error on the left of OR means no match even when the right is true; short-circuit keeps it from the right', () => {
    expect(compileFilter("missing = 'x' OR type = 'com.example.order.placed'").matches(base)).toBe(false);
    expect(compileFilter("type = 'com.example.order.placed' OR missing = 'x'").matches(base)).toBe(true);
    expect(compileFilter('FALSE AND 1 / 0 = 0').matches(base)).toBe(false);
    expect(compileFilter('TRUE OR 1 / 0 = 0').matches(base)).toBe(true);
  });

  it('the same compiled filter gives the same verdicts in any order and keeps no event', () => {
    const events = [
      { ...base, subject: 'orders/1', extensions: { priority: 3 } },
      { ...base },
      { ...base, subject: 'orders/2', extensions: { priority: 5 } },
    ];
    const first = events.map((e) => filter.matches(e));
    const second = [...events].reverse().map((e) => filter.matches(e));
    expect(first).toEqual([true, false, true]);
    expect(second.reverse()).toEqual(first);
    expect(filter.evaluate(events[1] as CloudEvent)).toEqual({
      value: false,
      errors: [{ kind: 'missingAttribute', message: "The event has no attribute 'subject'", start: 0, end: 7 }],
    });
  });

  it('never mutates the event', () => {
    const event = Object.freeze({ ...base, subject: 'orders/1', extensions: Object.freeze({ priority: 3 }) });
    expect(compileFilter("LOWER(subject) = 'orders/1' AND priority > 2").matches(event)).toBe(true);
  });
});
