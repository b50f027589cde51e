import { randomFillSync } from 'node:crypto';
import { parseTraceparent } from '@switchboard/core';

// Random bytes are drawn from a pool refilled in one call: a synchronous `randomBytes` per request
// costs more than everything else the client does on its hot path.
const pool = Buffer.allocUnsafe(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (offset + bytes > pool.length) {
      randomFillSync(pool);
      offset = 0;
    }
    const hex = pool.toString('hex', offset, offset + bytes);
    offset += bytes;
    // All-zero ids are invalid in W3C Trace Context.
    if (!/^0+$/.test(hex)) return hex;
  }
}

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
  return { traceId: randomHex(16), flags: '01', continued: false };
}

/** The `traceparent` of one attempt: the call's trace, a new span id. */
export function attemptTraceparent(trace: Trace): string {
  return `00-${trace.traceId}-${randomHex(8)}-${trace.flags}`;
}
