import { randomFillSync } from 'node:crypto';
import { parseTraceparent } from '@switchboard/core';

const POOL_BYTES = 24 * 256;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** `length` random bytes as lowercase hex, from a pool refilled once every 256 messages. */
function randomHex(length: number): string {
  if (offset + length > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + length);
  offset += length;
  return hex;
}

/**
 * The `traceparent` of an outgoing message: a child span of `parent` (same trace and flags), or
 * a new sampled trace. The same result as core's `childTraceparent`, with the random ids drawn
 * from a pool: one `randomFillSync` per 256 messages instead of two per message, which shows on
 * the publishing hot path.
 */
export function outgoingTraceparent(parent: string | undefined): string {
  const parsed = parseTraceparent(parent);
  const spanId = randomHex(8);
  if (parsed !== undefined) return `00-${parsed.traceId}-${spanId}-${parsed.flags}`;
  return `00-${randomHex(16)}-${spanId}-01`;
}
