import { createHash } from 'node:crypto';

/** SHA-256 of the request body bytes, hex: what `Idempotency-Key` compares. */
export function requestHash(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}
