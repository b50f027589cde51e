import { randomHex } from './ids.js';

/** W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/). */
export interface TraceParent {
  readonly version: string;
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

export function parseTraceparent(value: string | undefined | null): TraceParent | undefined {
  if (!value) return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, parentId, flags] = match as unknown as [string, string, string, string, string];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  if (version === '00' && value.trim().length !== 55) return undefined;
  return { version, traceId, parentId, flags };
}

export function formatTraceparent(trace: TraceParent): string {
  return `00-${trace.traceId}-${trace.parentId}-${trace.flags}`;
}

/** A random, valid W3C trace id (32 hex digits, never all zero). */
export function newTraceId(): string {
  for (;;) {
    const id = randomHex(16);
    if (!/^0+$/.test(id)) return id;
  }
}

/** A random, valid W3C span (parent) id (16 hex digits, never all zero). */
export function newSpanId(): string {
  for (;;) {
    const id = randomHex(8);
    if (!/^0+$/.test(id)) return id;
  }
}

/**
 * The `traceparent` to send downstream: same trace, new span id. Starts a new sampled trace when
 * there is no valid parent. Ids come from a random pool: no system call per call.
 */
export function childTraceparent(parent?: string | null): string {
  const parsed = parseTraceparent(parent);
  if (parsed) return `00-${parsed.traceId}-${newSpanId()}-${parsed.flags}`;
  return `00-${newTraceId()}-${newSpanId()}-01`;
}
