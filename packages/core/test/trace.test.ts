import {
  continueTrace,
  formatTraceparent,
  normalizeTracestate,
  parseTraceparent,
  parseTracestate,
  TRACE_FLAG_RANDOM,
  TRACESTATE_MAX_LENGTH,
} from '@switchboard/core';
import { childTraceparent, newSpanId, newTraceId, randomHex } from '@switchboard/core/kit';
import { describe, expect, it } from 'vitest';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${SPAN}-01`;

/** The trace id a child of `parent` carries (a new one when the parent is invalid). */
function childTraceId(parent: string | readonly string[] | undefined): string | undefined {
  return parseTraceparent(childTraceparent(parent))?.traceId;
}

describe('traceparent (W3C Trace Context)', () => {
  it('continues a valid parent: same trace id and flags, a new span id', () => {
    const parsed = parseTraceparent(childTraceparent(VALID));
    expect(parsed?.traceId).toBe(TRACE);
    expect(parsed?.flags).toBe('01');
    expect(parsed?.parentId).not.toBe(SPAN);
    expect(parsed?.parentId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('restarts with random ids, sampled and random flags set, without a valid parent', () => {
    for (const parent of [undefined, '', 'garbage', `00-${'0'.repeat(32)}-${SPAN}-01`]) {
      const parsed = parseTraceparent(childTraceparent(parent));
      expect(parsed).toBeDefined();
      expect(parsed?.traceId).not.toBe(TRACE);
      expect(parsed?.flags).toBe('03');
    }
  });

  it('ignores optional whitespace (space, tab) around the value', () => {
    for (const value of [` ${VALID}`, `\t${VALID}`, `${VALID} `, `${VALID}\t`, `\t ${VALID} \t`]) {
      expect(parseTraceparent(value)?.traceId).toBe(TRACE);
    }
  });

  it('does not treat other whitespace as optional whitespace', () => {
    expect(parseTraceparent(`\n${VALID}`)).toBeUndefined();
    expect(parseTraceparent(`${VALID}\u00a0`)).toBeUndefined();
  });

  it('rejects version ff', () => {
    expect(parseTraceparent(`ff-${TRACE}-${SPAN}-01`)).toBeUndefined();
  });

  it('rejects a version that is not two lower-case hex digits', () => {
    for (const version of ['.0', '0.', '0', '000', '0000', 'AA', 'zz']) {
      expect(parseTraceparent(`${version}-${TRACE}-${SPAN}-01`)).toBeUndefined();
    }
  });

  it('rejects version 00 with anything after the flags', () => {
    expect(parseTraceparent(`${VALID}.`)).toBeUndefined();
    expect(parseTraceparent(`${VALID}-what-the-future-will-be-like`)).toBeUndefined();
  });

  it('reads a higher version as far as 00 goes: flags followed by the end or a dash', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01`)?.traceId).toBe(TRACE);
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-will-be-like`)?.traceId).toBe(TRACE);
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01.what-the-future-will-be-like`)).toBeUndefined();
  });

  it('downgrades a higher version to 00 on the way out', () => {
    expect(childTraceparent(`cc-${TRACE}-${SPAN}-01-future`)).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });

  it('rejects a trace id that is all zero, too short, too long, upper-case or not hex', () => {
    for (const id of ['0'.repeat(32), TRACE.slice(1), `${TRACE}3`, TRACE.toUpperCase(), `.${TRACE.slice(1)}`]) {
      expect(parseTraceparent(`00-${id}-${SPAN}-01`)).toBeUndefined();
    }
  });

  it('rejects a parent id that is all zero, too short, too long, upper-case or not hex', () => {
    for (const id of ['0'.repeat(16), SPAN.slice(1), `${SPAN}7`, 'ABCDEF0123456789', `.${SPAN.slice(1)}`]) {
      expect(parseTraceparent(`00-${TRACE}-${id}-01`)).toBeUndefined();
    }
  });

  it('rejects trace flags that are not two lower-case hex digits', () => {
    for (const flags of ['.0', '0.', '1', '001', 'FF']) {
      expect(parseTraceparent(`00-${TRACE}-${SPAN}-${flags}`)).toBeUndefined();
    }
  });

  it('zeroes reserved flags: only sampled and random are passed on', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-ff`)?.flags).toBe('03');
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-fc`)?.flags).toBe('00');
    expect(childTraceparent(`00-${TRACE}-${SPAN}-05`)).toMatch(/-01$/);
    expect(formatTraceparent({ traceId: TRACE, parentId: SPAN, flags: 'ff' })).toBe(`00-${TRACE}-${SPAN}-03`);
  });

  it('keeps the random flag of a continued trace as it came (Level 2)', () => {
    const set = parseTraceparent(childTraceparent(`00-${TRACE}-${SPAN}-02`));
    expect(Number.parseInt(set?.flags ?? '', 16) & TRACE_FLAG_RANDOM).toBe(TRACE_FLAG_RANDOM);
    const unset = parseTraceparent(childTraceparent(`00-${TRACE}-${SPAN}-01`));
    expect(Number.parseInt(unset?.flags ?? '', 16) & TRACE_FLAG_RANDOM).toBe(0);
  });

  it('treats two traceparent values (repeated header lines, or joined by a comma) as invalid', () => {
    expect(childTraceId([VALID, VALID])).not.toBe(TRACE);
    expect(childTraceId(`${VALID}, ${VALID}`)).not.toBe(TRACE);
    expect(childTraceId([VALID])).toBe(TRACE);
  });

  it('draws distinct, well-formed ids from the random pool', () => {
    const traces = new Set(Array.from({ length: 2000 }, newTraceId));
    const spans = new Set(Array.from({ length: 2000 }, newSpanId));
    expect(traces.size).toBe(2000);
    expect(spans.size).toBe(2000);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    for (const id of spans) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(randomHex(3)).toMatch(/^[0-9a-f]{6}$/);
  });
});

describe('tracestate (W3C Trace Context)', () => {
  it('passes a valid list on unchanged, in order', () => {
    expect(normalizeTracestate('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
  });

  it('combines several header lines into one list, in order', () => {
    expect(normalizeTracestate(['foo=1,bar=2', 'rojo=1,congo=2', 'baz=3'])).toBe('foo=1,bar=2,rojo=1,congo=2,baz=3');
  });

  it('drops optional whitespace (spaces and tabs) around members, keeps leading spaces of a value', () => {
    expect(normalizeTracestate('foo=1 \t , \t bar=2, \t baz=3')).toBe('foo=1,bar=2,baz=3');
    expect(normalizeTracestate('\t foo=1 \t')).toBe('foo=1');
    expect(normalizeTracestate('foo= 1')).toBe('foo= 1');
  });

  it('skips empty members and sends nothing for an empty list', () => {
    expect(normalizeTracestate('')).toBeUndefined();
    expect(normalizeTracestate(' , ,\t')).toBeUndefined();
    expect(normalizeTracestate(['', 'foo=1'])).toBe('foo=1');
    expect(normalizeTracestate('foo=1,,bar=2')).toBe('foo=1,bar=2');
  });

  it('keeps the first value of a repeated key', () => {
    expect(normalizeTracestate('foo=1,foo=2')).toBe('foo=1');
    expect(normalizeTracestate(['foo=1', 'foo=2'])).toBe('foo=1');
  });

  it('discards the whole list when a key breaks the grammar', () => {
    for (const bad of ['foo =1', 'FOO=1', 'foo.bar=1', '_foo=1', '@foo=1', `${'z'.repeat(257)}=1`, '=1']) {
      expect(normalizeTracestate(`ok=1,${bad}`), bad).toBeUndefined();
    }
  });

  it('takes every key character the grammar allows, up to 256 characters, at signs anywhere after the first', () => {
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/';
    expect(normalizeTracestate(`${key}=1`)).toBe(`${key}=1`);
    for (const long of ['z'.repeat(256), `${'t'.repeat(241)}@${'v'.repeat(14)}`, `${'t'.repeat(242)}@v`, `t@${'v'.repeat(15)}`]) {
      expect(parseTracestate(`${long}=1`)).toEqual([{ key: long, value: '1' }]);
    }
  });

  it('discards the whole list when a value breaks the grammar', () => {
    for (const bad of ['foo=bar=baz', 'foo=', 'foo=a\tb', 'foo=\u00e9', `foo=${'v'.repeat(257)}`, 'foo', 'foo=1\n']) {
      expect(normalizeTracestate(`ok=1,${bad}`), bad).toBeUndefined();
    }
  });

  it('takes every value character the grammar allows', () => {
    let value = '';
    for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2c && c !== 0x3d) value += String.fromCharCode(c);
    expect(normalizeTracestate(`foo=${value}`)).toBe(`foo=${value}`);
  });

  it('takes 32 members and discards a list of 33', () => {
    const members = Array.from({ length: 33 }, (_, i) => `bar${i}=${i}`);
    expect(parseTracestate(members.slice(0, 32).join(','))).toHaveLength(32);
    expect(normalizeTracestate(members.join(','))).toBeUndefined();
  });

  it('truncates a list over 512 characters by whole members, long ones first, then from the right', () => {
    const long = `long=${'x'.repeat(200)}`;
    const small = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}=${'y'.repeat(10)}`);
    const out = normalizeTracestate([long, ...small].join(','));
    expect(out).toBeDefined();
    expect(out?.length).toBeLessThanOrEqual(TRACESTATE_MAX_LENGTH);
    expect(out).not.toContain('long=');
    expect(out?.startsWith('k00=')).toBe(true);
    const members = out?.split(',') ?? [];
    expect(members.length).toBe(30);

    const many = Array.from({ length: 32 }, (_, i) => `k${String(i).padStart(2, '0')}=${'y'.repeat(16)}`);
    const cut = normalizeTracestate(many.join(',')) ?? '';
    expect(cut.length).toBeLessThanOrEqual(TRACESTATE_MAX_LENGTH);
    expect(many.join(',').startsWith(cut)).toBe(true);
  });
});

describe('continueTrace', () => {
  it('continues a valid parent with its normalized tracestate', () => {
    const trace = continueTrace(VALID, 'foo=1 , bar=2');
    expect(parseTraceparent(trace.traceparent)?.traceId).toBe(TRACE);
    expect(trace.tracestate).toBe('foo=1,bar=2');
  });

  it('discards a tracestate received without a traceparent', () => {
    const trace = continueTrace(undefined, 'foo=1');
    expect(parseTraceparent(trace.traceparent)).toBeDefined();
    expect(trace.tracestate).toBeUndefined();
  });

  it('discards a tracestate received with an invalid traceparent, and restarts the trace', () => {
    const trace = continueTrace(`00-${TRACE}-${SPAN}-01-extra`, 'foo=1');
    expect(parseTraceparent(trace.traceparent)?.traceId).not.toBe(TRACE);
    expect(trace.tracestate).toBeUndefined();
  });

  it('keeps the trace when only the tracestate is invalid', () => {
    const trace = continueTrace(VALID, 'FOO=1');
    expect(parseTraceparent(trace.traceparent)?.traceId).toBe(TRACE);
    expect(trace.tracestate).toBeUndefined();
  });
});
