import { randomFillSync } from 'node:crypto';
import { parseTraceparent } from '@switchboard/core';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * The `traceparent` of the server's span for one request: it continues the caller's trace (same
 * trace id and flags, new span id) or starts a new sampled trace. Randomness comes from a pool, so
 * the hot path makes no system call per request.
 */
export function serverTraceparent(incoming: string | undefined): string {
  const parent = incoming === undefined ? undefined : parseTraceparent(incoming);
  if (parent !== undefined) return `00-${parent.traceId}-${randomHex(8)}-${parent.flags}`;
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}
