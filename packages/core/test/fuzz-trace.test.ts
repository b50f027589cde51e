/**
 * Fuzzing W3C Trace Context parsing and formatting: whatever arrives as `traceparent` and
 * `tracestate`, what is sent on is well-formed (version 00, lower-case hex, no reserved flags; a
 * tracestate of at most 32 valid members and 512 characters, or none), parsing never throws, and
 * a valid value round-trips.
 */

import { continueTrace, normalizeTracestate, parseTraceparent, parseTracestate } from '@switchboard/core';
import { childTraceparent } from '@switchboard/core/kit';
import { fuzzParameters } from '@switchboard/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const OUTGOING_TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-0[0-3]$/;
const MEMBER = /^[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

const hex = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
const ows = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 3 });

/** Valid traceparents (any version but ff, maybe with future fields), and near misses. */
const traceparent: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(hex(2), hex(32), hex(16), hex(2), fc.option(fc.string({ maxLength: 10 }), { nil: undefined }), ows, ows)
    .map(([version, trace, span, flags, tail, before, after]) => {
      const base = `${version}-${trace}-${span}-${flags}`;
      return `${before}${tail === undefined || version === '00' ? base : `${base}-${tail}`}${after}`;
    }),
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABF-. \t'), maxLength: 70 }),
  fc.string({ unit: 'binary', maxLength: 70 }),
);

const key = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcz09_-*/@'), minLength: 1, maxLength: 20 }),
  fc.string({ unit: 'binary-ascii', maxLength: 10 }),
);
const value = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcXYZ09 !~;<>'), minLength: 1, maxLength: 20 }),
  fc.string({ unit: 'binary-ascii', maxLength: 10 }),
);
/** Lists of members (valid or not) with whitespace and empty members, as one or several header lines. */
const tracestate: fc.Arbitrary<string | string[]> = fc.oneof(
  fc
    .array(fc.tuple(ows, key, value, ows), { maxLength: 40 })
    .map((members) => members.map(([a, k, v, b]) => `${a}${k}=${v}${b}`).join(',')),
  fc.array(fc.string({ unit: 'binary-ascii', maxLength: 30 }), { minLength: 1, maxLength: 4 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
);

describe('fuzz: W3C Trace Context', () => {
  it('always sends a well-formed traceparent, and keeps the trace id of a valid parent', () => {
    fc.assert(
      fc.property(traceparent, (value) => {
        const child = childTraceparent(value);
        expect(child).toMatch(OUTGOING_TRACEPARENT);
        const parsed = parseTraceparent(value);
        if (parsed !== undefined) expect(child.slice(3, 35)).toBe(parsed.traceId);
      }),
      fuzzParameters(400),
    );
  });

  it('round-trips what it sends: a child of a child keeps trace id and flags', () => {
    fc.assert(
      fc.property(traceparent, (value) => {
        const child = childTraceparent(value);
        const parsed = parseTraceparent(child);
        expect(parsed).toBeDefined();
        expect(childTraceparent(child).slice(0, 36)).toBe(child.slice(0, 36));
        expect(childTraceparent(child).slice(52)).toBe(child.slice(52));
      }),
      fuzzParameters(200),
    );
  });

  it('sends on only valid tracestate: at most 32 members, 512 characters, no duplicates, never empty', () => {
    fc.assert(
      fc.property(tracestate, (value) => {
        const out = normalizeTracestate(value);
        if (out === undefined) return;
        expect(out.length).toBeGreaterThan(0);
        expect(out.length).toBeLessThanOrEqual(512);
        const members = out.split(',');
        expect(members.length).toBeLessThanOrEqual(32);
        for (const member of members) expect(member).toMatch(MEMBER);
        const keys = members.map((member) => member.slice(0, member.indexOf('=')));
        expect(new Set(keys).size).toBe(keys.length);
      }),
      fuzzParameters(400),
    );
  });

  it('is idempotent on tracestate, and the parsed members format back to the same list', () => {
    fc.assert(
      fc.property(tracestate, (value) => {
        const out = normalizeTracestate(value);
        expect(normalizeTracestate(out)).toBe(out);
        if (out !== undefined)
          expect(
            parseTracestate(out)
              ?.map((m) => `${m.key}=${m.value}`)
              .join(','),
          ).toBe(out);
      }),
      fuzzParameters(300),
    );
  });

  it('never forwards a tracestate without a valid traceparent', () => {
    fc.assert(
      fc.property(traceparent, tracestate, (parent, state) => {
        const trace = continueTrace(parent, state);
        expect(trace.traceparent).toMatch(OUTGOING_TRACEPARENT);
        if (parseTraceparent(parent) === undefined) expect(trace.tracestate).toBeUndefined();
        else expect(trace.tracestate).toBe(normalizeTracestate(state));
      }),
      fuzzParameters(300),
    );
  });
});
