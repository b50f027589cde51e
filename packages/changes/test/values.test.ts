import { describe, expect, it } from 'vitest';
import { converterFor } from '../src/index.js';

const convert = (oid: number, text: string, types?: Map<number, { baseOid?: number; elementOid?: number }>) =>
  converterFor(oid, types)(text);

describe('PostgreSQL text values as JSON values', () => {
  it('numbers, booleans and precise types', () => {
    expect(convert(16, 't')).toBe(true);
    expect(convert(16, 'f')).toBe(false);
    expect(convert(23, '-42')).toBe(-42);
    expect(convert(21, '7')).toBe(7);
    expect(convert(701, '1.5e-7')).toBe(1.5e-7);
    expect(convert(700, 'NaN')).toBe('NaN');
    expect(convert(701, '-Infinity')).toBe('-Infinity');
    expect(convert(20, '9007199254740993')).toBe('9007199254740993');
    expect(convert(1700, '12345678901234567890.000000001')).toBe('12345678901234567890.000000001');
  });

  it('json and jsonb parsed; bytea as base64', () => {
    expect(convert(3802, '{"a": [1, null, "x"]}')).toEqual({ a: [1, null, 'x'] });
    expect(convert(114, '"text"')).toBe('text');
    expect(convert(17, '\\xdeadbeef')).toBe(Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString('base64'));
  });

  it('timestamps in RFC 3339, microseconds kept', () => {
    expect(convert(1184, '2026-05-01 12:34:56.123456+00')).toBe('2026-05-01T12:34:56.123456Z');
    expect(convert(1184, '2026-05-01 12:34:56+00')).toBe('2026-05-01T12:34:56Z');
    expect(convert(1184, '2026-05-01 12:34:56+05:30')).toBe('2026-05-01T12:34:56+05:30');
    expect(convert(1184, '2026-05-01 12:34:56-03')).toBe('2026-05-01T12:34:56-03:00');
    expect(convert(1184, 'infinity')).toBe('infinity');
    expect(convert(1184, '0044-03-15 12:00:00+00 BC')).toBe('0044-03-15 12:00:00+00 BC');
    expect(convert(1114, '2026-05-01 12:34:56.5')).toBe('2026-05-01T12:34:56.5');
    expect(convert(1082, '2026-05-01')).toBe('2026-05-01');
  });

  it('arrays, nested and with NULL and quoting; domains as their base type', () => {
    expect(convert(1007, '{1,2,NULL}')).toEqual([1, 2, null]);
    expect(convert(1009, '{a,"b c","d\\"e",NULL,"NULL"}')).toEqual(['a', 'b c', 'd"e', null, 'NULL']);
    expect(convert(1007, '{{1,2},{3,4}}')).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(convert(1185, '{"2026-05-01 12:00:00+00"}')).toEqual(['2026-05-01T12:00:00Z']);
    const types = new Map([
      [90001, { baseOid: 23 }],
      [90002, { elementOid: 90001 }],
    ]);
    expect(convert(90001, '5', types)).toBe(5);
    expect(convert(90002, '{5,6}', types)).toEqual([5, 6]);
  });

  it('anything else as PostgreSQL writes it', () => {
    expect(convert(25, 'plain')).toBe('plain');
    expect(convert(2950, '0190b5c2-58a4-7c54-9d52-0a5f1c3b2e10')).toBe('0190b5c2-58a4-7c54-9d52-0a5f1c3b2e10');
    expect(convert(1186, '1 day 02:00:00')).toBe('1 day 02:00:00');
    expect(convert(123456, 'an enum label')).toBe('an enum label');
  });
});
