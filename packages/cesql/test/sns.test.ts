import {
  type CesqlValue,
  compileExpression,
  parse,
  type SnsAttribute,
  type SnsPushdownOptions,
  toSnsFilterPolicy,
} from '@switchboard/cesql';
import type { CloudEvent } from '@switchboard/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type SnsMessageAttributes, snsMatches } from './sns-model.js';

describe('the SNS model follows the AWS documentation examples', () => {
  const s = (Value: string) => ({ Type: 'String' as const, Value });
  const n = (Value: string) => ({ Type: 'Number' as const, Value });
  it.each([
    [{ customer_interests: ['rugby', 'tennis'] }, { customer_interests: s('rugby') }, true],
    [{ customer_interests: ['rugby', 'tennis'] }, { customer_interests: s('baseball') }, false],
    [{ customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] }, { customer_interests: s('football') }, true],
    [{ customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] }, { customer_interests: s('rugby') }, false],
    [{ customer_interests: [{ prefix: 'bas' }] }, { customer_interests: s('basketball') }, true],
    [{ customer_interests: [{ prefix: 'bas' }] }, { customer_interests: s('rugby') }, false],
    [{ price_usd: [{ numeric: ['=', 301.5] }] }, { price_usd: n('3.015e2') }, true],
    [{ price: [{ 'anything-but': [100, 500] }] }, { price: n('100.1') }, true],
    [{ price: [{ 'anything-but': [100, 500] }] }, { price: n('100') }, false],
    [{ price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, { price_usd: n('150') }, true],
    [{ price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, { price_usd: n('0') }, false],
    [{ store: [{ exists: true }] }, { store: s('fans') }, true],
    [{ store: [{ exists: true }] }, { customer_interests: s('baseball') }, false],
    [{ store: [{ exists: false }] }, { customer_interests: s('baseball') }, true],
    [{ store: [{ exists: false }] }, { store: s('fans') }, false],
    [
      { customer_interests: ['rugby'], price_usd: [{ numeric: ['>', 100] }] },
      { customer_interests: s('rugby'), price_usd: n('101') },
      true,
    ],
    [
      { customer_interests: ['rugby'], price_usd: [{ numeric: ['>', 100] }] },
      { customer_interests: s('rugby'), price_usd: n('99') },
      false,
    ],
    [
      { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
      { source: s('aws.cloudwatch'), namespace: s('AWS/EC2') },
      true,
    ],
    [
      { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] },
      { source: s('aws.cloudwatch'), metricName: s('ReadLatency') },
      false,
    ],
    [{ file: [{ prefix: 'a' }] }, { file: { Type: 'Binary' as const, Value: 'YQ==' } }, false],
  ])('%j on %j', (policy, attributes, expected) => {
    expect(snsMatches(policy, attributes)).toBe(expected);
  });
});

/** How the test's "adapter" carries attributes: the contract `SnsAttribute` describes. */
const MAPPING: Record<string, SnsAttribute> = {
  type: { name: 'ce-type' },
  source: { name: 'ce-source' },
  subject: { name: 'ce-subject' },
  region: { name: 'ce-region' },
  flag: { name: 'ce-flag' },
  priority: { name: 'ce-priority', type: 'Number' },
};
const options: SnsPushdownOptions = { attribute: (name) => MAPPING[name] };

const push = (expression: string) => toSnsFilterPolicy(parse(expression), options);

function asText(value: CesqlValue): string {
  return typeof value === 'boolean' ? String(value) : String(value);
}

/** Encodes an event's mapped attributes as SNS message attributes, as the contract says an adapter does. */
function snsAttributes(event: CloudEvent): SnsMessageAttributes {
  const out: Record<string, { Type: 'String' | 'Number'; Value: string }> = {};
  for (const [name, attribute] of Object.entries(MAPPING)) {
    const raw = (event as unknown as Record<string, unknown>)[name] ?? event.extensions?.[name];
    if (raw === undefined) continue;
    const text = asText(raw as CesqlValue);
    if (text === '') continue; // SNS refuses empty values
    if (attribute.type === 'Number') {
      const int =
        typeof raw === 'number' ? raw : typeof raw === 'boolean' ? (raw ? 1 : 0) : /^[+-]?[0-9]+$/.test(text) ? Number(text) : undefined;
      out[attribute.name] = int === undefined ? { Type: 'String', Value: text } : { Type: 'Number', Value: String(int) };
    } else {
      out[attribute.name] = { Type: 'String', Value: text };
    }
  }
  return out;
}

describe('toSnsFilterPolicy: shapes that push down', () => {
  it.each([
    ["type = 'com.example.a'", { 'ce-type': ['com.example.a'] }, true],
    ["'com.example.a' = type", { 'ce-type': ['com.example.a'] }, true],
    ["type IN ('a', 'b')", { 'ce-type': ['a', 'b'] }, true],
    ["type = 'a' OR type = 'b'", { 'ce-type': ['a', 'b'] }, true],
    ["type <> 'a'", { 'ce-type': [{ 'anything-but': ['a'] }] }, true],
    ["NOT (type = 'a')", { 'ce-type': [{ 'anything-but': ['a'] }] }, true],
    ["type NOT IN ('a', 'b')", { 'ce-type': [{ 'anything-but': ['a', 'b'] }] }, true],
    ["subject LIKE 'orders/%'", { 'ce-subject': [{ prefix: 'orders/' }] }, true],
    ["subject NOT LIKE 'orders/%'", { 'ce-subject': [{ 'anything-but': { prefix: 'orders/' } }] }, true],
    ["subject LIKE '%.jpg'", { 'ce-subject': [{ suffix: '.jpg' }] }, true],
    ["subject LIKE 'a\\%b%'", { 'ce-subject': [{ prefix: 'a%b' }] }, true],
    ['EXISTS subject', { 'ce-subject': [{ exists: true }] }, true],
    ['NOT EXISTS subject', { 'ce-subject': [{ exists: false }] }, true],
    ['priority > 2', { 'ce-priority': [{ numeric: ['>', 2] }] }, true],
    ['2 < priority', { 'ce-priority': [{ numeric: ['>', 2] }] }, true],
    ['priority >= 2 AND priority < 10', { 'ce-priority': [{ numeric: ['>=', 2, '<', 10] }] }, true],
    ['priority = 5', { 'ce-priority': [{ numeric: ['=', 5] }] }, true],
    ['priority <> 5', { 'ce-priority': [{ numeric: ['<', 5] }, { numeric: ['>', 5] }] }, true],
    ['priority IN (1, -2)', { 'ce-priority': [{ numeric: ['=', 1] }, { numeric: ['=', -2] }] }, false],
    ['NOT (priority <= 3)', { 'ce-priority': [{ numeric: ['>', 3] }] }, true],
    ['flag = TRUE', { 'ce-flag': [{ 'equals-ignore-case': 'true' }] }, true],
    ["subject LIKE 'orders/%' AND priority > 2", { 'ce-subject': [{ prefix: 'orders/' }], 'ce-priority': [{ numeric: ['>', 2] }] }, true],
    [
      "type = 't' AND (region = 'eu' OR priority > 5)",
      { 'ce-type': ['t'], $or: [{ 'ce-region': ['eu'] }, { 'ce-priority': [{ numeric: ['>', 5] }] }] },
      false,
    ],
    ["type = 'a' OR source = 'b'", { $or: [{ 'ce-type': ['a'] }, { 'ce-source': ['b'] }] }, true],
    ["type = 'a' AND LENGTH(subject) > 3", { 'ce-type': ['a'] }, false],
    ["type = 'a' AND other = 'x'", { 'ce-type': ['a'] }, false],
    ["region <> 'eu'", { 'ce-region': [{ 'anything-but': ['eu'] }, { exists: false }] }, false],
    ["type = 'a' AND type LIKE 'a%'", { 'ce-type': ['a'] }, true],
    ["subject LIKE 'a_c%'", { 'ce-subject': [{ prefix: 'a' }] }, false],
  ])('%s', (expression, policy, exact) => {
    expect(push(expression)).toEqual({ policy, exact });
  });

  it.each([
    ['LENGTH(subject) > 3'],
    ["other = 'x'"],
    ["region = 05 OR type = 'a'"],
    ['region = 5'],
    ["priority = '5'"],
    ["region LIKE '%'"],
    ['EXISTS region'],
    ["'05' = region"],
    ['priority > 2000000000'],
    ["type = 'a' AND type = 'b'"],
    ['TRUE'],
    ['subject'],
  ])('%s: nothing SNS can check', (expression) => {
    expect(push(expression)).toBeUndefined();
  });

  it('stays within five keys and 150 combinations, keeping the shared part when the whole would not fit', () => {
    const wide = "type = 'a' AND (region = 'a' OR region = 'b' OR subject = 'c' OR source = 'd' OR priority = 1 OR flag = 'x')";
    const result = push(wide);
    expect(result).toEqual({ policy: { 'ce-type': ['a'] }, exact: false });
    const many = `type IN (${Array.from({ length: 151 }, (_, i) => `'t${i}'`).join(', ')})`;
    expect(push(many)).toBeUndefined();
  });

  it('never uses a reserved key', () => {
    const result = toSnsFilterPolicy(parse("type = 'a' AND subject = 'b'"), {
      attribute: (name) => (name === 'type' ? { name: 'prefix' } : { name: `ce-${name}` }),
    });
    expect(result).toEqual({ policy: { 'ce-subject': ['b'] }, exact: false });
  });
});

describe('toSnsFilterPolicy never drops a message the filter matches (checked with the SNS model)', () => {
  const strings = ['a', 'b', 'ab', 'ba', '', '5', '05', 'TRUE', 'true', 'a%b'];
  const str = fc.constantFrom(...strings.map((s) => `'${s}'`));
  const int = fc.constantFrom('-1', '0', '2', '5');
  const op = fc.constantFrom('=', '<>', '!=', '<', '<=', '>', '>=');
  const strAttr = fc.constantFrom('type', 'subject', 'region', 'flag', 'other');
  const atom = fc.oneof(
    fc.tuple(strAttr, fc.constantFrom('=', '<>'), str).map(([a, o, v]) => `${a} ${o} ${v}`),
    fc.tuple(str, strAttr).map(([v, a]) => `${v} = ${a}`),
    fc
      .tuple(strAttr, fc.array(fc.oneof(str, int, fc.constantFrom('TRUE')), { minLength: 1, maxLength: 3 }))
      .map(([a, vs]) => `${a} IN (${vs.join(', ')})`),
    fc
      .tuple(strAttr, fc.boolean(), fc.constantFrom("'a%'", "'%b'", "'a'", "'%'", "'a_%'", "'%a%'", "'a\\%%'"))
      .map(([a, neg, p]) => `${a} ${neg ? 'NOT LIKE' : 'LIKE'} ${p}`),
    fc.tuple(fc.constantFrom('priority', 'region'), op, int).map(([a, o, v]) => `${a} ${o} ${v}`),
    fc.tuple(int, op, fc.constantFrom('priority', 'flag')).map(([v, o, a]) => `${v} ${o} ${a}`),
    fc
      .tuple(fc.constantFrom('priority', 'region'), fc.array(int, { minLength: 1, maxLength: 3 }))
      .map(([a, vs]) => `${a} NOT IN (${vs.join(', ')})`),
    fc.tuple(fc.constantFrom('flag', 'region', 'priority'), fc.constantFrom('TRUE', 'FALSE')).map(([a, v]) => `${a} = ${v}`),
    fc.constantFrom('TRUE = flag', 'EXISTS subject', 'EXISTS region', 'EXISTS type', 'LENGTH(region) > 1', 'flag', 'TRUE', 'FALSE'),
  );
  const expression = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      tie('e').map((x) => `NOT (${x})`),
      fc.tuple(tie('e'), fc.constantFrom('AND', 'OR', 'XOR'), tie('e')).map(([l, o, r]) => `(${l}) ${o} (${r})`),
    ),
  })).e;
  const value = fc.constantFrom<CesqlValue | undefined>(
    undefined,
    'a',
    'b',
    'ab',
    'ba',
    '',
    '5',
    '05',
    'TRUE',
    'true',
    'x',
    2,
    5,
    -1,
    0,
    true,
    false,
  );
  const event = fc
    .record({ type: fc.constantFrom('a', 'b', 'ab'), subject: value, region: value, flag: value, priority: value, other: value })
    .map(({ type, subject, ...extensions }): CloudEvent => {
      const ext = Object.fromEntries(Object.entries(extensions).filter(([, v]) => v !== undefined)) as Record<string, CesqlValue>;
      return {
        specversion: '1.0',
        id: '1',
        source: 'src',
        type,
        ...(typeof subject === 'string' && subject !== '' ? { subject } : {}),
        extensions: ext,
      };
    });

  it('for random filters and events: SNS ⊇ filter, and SNS = filter where the pushdown says exact', () => {
    const tally = { pushed: 0, exact: 0, matched: 0 };
    fc.assert(
      fc.property(expression, fc.array(event, { minLength: 20, maxLength: 20 }), (text, events) => {
        const result = push(text);
        if (result === undefined) return;
        tally.pushed++;
        if (result.exact) tally.exact++;
        const filter = compileExpression(text);
        for (const e of events) {
          const matches = filter.matches(e);
          const delivered = snsMatches(result.policy, snsAttributes(e));
          if (matches) tally.matched++;
          if (matches && !delivered)
            throw new Error(`SNS drops a match: ${text} on ${JSON.stringify(e)} with ${JSON.stringify(result.policy)}`);
          if (result.exact && matches !== delivered) {
            throw new Error(`not exact: ${text} on ${JSON.stringify(e)} with ${JSON.stringify(result.policy)}`);
          }
        }
      }),
      { numRuns: 4000 },
    );
    // The property must have had something to check.
    expect(tally.pushed).toBeGreaterThan(1000);
    expect(tally.exact).toBeGreaterThan(300);
    expect(tally.matched).toBeGreaterThan(1000);
  });
});
