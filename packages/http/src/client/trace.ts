import { currentTrace, normalizeTracestate, parseTraceparent, type TraceCarrier } from '@switchboard/core';
import { newSpanId, newTraceId } from '@switchboard/core/kit';

/** The trace a call belongs to: the caller's, or a new one. */
export interface Trace {
  readonly traceId: string;
  /** Known flags only (`sampled`, `random`): reserved bits are never sent. */
  readonly flags: string;
  /** Whether it continues a valid caller `traceparent` (only then is `tracestate` passed on). */
  readonly continued: boolean;
  /** The caller's `tracestate`, validated and normalized; only on a continued trace. */
  readonly tracestate?: string | undefined;
}

/**
 * The trace of a call from the caller's `traceparent` and `tracestate`: the same trace when the
 * parent is valid (its tracestate normalized, invalid ones dropped), else a new one with random ids
 * (`sampled` and `random` set) and no tracestate.
 */
export function traceOf(parent: string | undefined, tracestate?: string): Trace {
  const parsed = parseTraceparent(parent);
  if (parsed !== undefined)
    return { traceId: parsed.traceId, flags: parsed.flags, continued: true, tracestate: normalizeTracestate(tracestate) };
  return { traceId: newTraceId(), flags: '03', continued: false, tracestate: undefined };
}

/** The `traceparent` of one attempt: the call's trace, a new span id. */
export function attemptTraceparent(trace: Trace): string {
  return `00-${trace.traceId}-${newSpanId()}-${trace.flags}`;
}

/**
 * The trace of an outgoing request: an explicit `traceparent` (with its `tracestate`) wins, then a
 * context passed in, then the ambient trace (the handler the request is made from), else a new one.
 */
export function callerTrace(traceparent: string | undefined, tracestate: string | undefined, context?: TraceCarrier): Trace {
  if (traceparent !== undefined) return traceOf(traceparent, tracestate);
  const carrier = context ?? currentTrace();
  return traceOf(carrier?.traceparent, carrier?.tracestate);
}
