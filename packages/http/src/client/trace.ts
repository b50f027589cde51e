import { parseTraceparent } from '@switchboard/core';
import { newSpanId, newTraceId } from '@switchboard/core/kit';

/** The trace a call belongs to: the caller's, or a new sampled one. */
export interface Trace {
  readonly traceId: string;
  readonly flags: string;
  /** Whether it continues a valid caller `traceparent` (only then is `tracestate` passed on). */
  readonly continued: boolean;
}

export function traceOf(parent: string | undefined): Trace {
  const parsed = parseTraceparent(parent);
  if (parsed !== undefined) return { traceId: parsed.traceId, flags: parsed.flags, continued: true };
  return { traceId: newTraceId(), flags: '01', continued: false };
}

/** The `traceparent` of one attempt: the call's trace, a new span id. */
export function attemptTraceparent(trace: Trace): string {
  return `00-${trace.traceId}-${newSpanId()}-${trace.flags}`;
}
