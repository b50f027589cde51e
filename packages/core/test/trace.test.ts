import { parseTraceparent } from '@switchboard/core';
import { childTraceparent, newSpanId, newTraceId, randomHex } from '@switchboard/core/kit';
import { describe, expect, it } from 'vitest';

describe('trace context', () => {
  it('continues a valid parent: same trace id and flags, a new span id', () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const child = childTraceparent(parent);
    const parsed = parseTraceparent(child);
    expect(parsed?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(parsed?.flags).toBe('01');
    expect(parsed?.parentId).not.toBe('00f067aa0ba902b7');
  });

  it('starts a new sampled trace without a valid parent', () => {
    for (const parent of [undefined, null, '', 'garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01']) {
      const parsed = parseTraceparent(childTraceparent(parent));
      expect(parsed).toBeDefined();
      expect(parsed?.flags).toBe('01');
    }
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
