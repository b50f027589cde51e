import { randomFillSync } from 'node:crypto';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const pool = Buffer.allocUnsafe(16 * 256);
let poolOffset = pool.length;
let lastMs = 0;
let sequence = 0;

/** 16 fresh random bytes, cut from a pool refilled by the CSPRNG: no slice is ever handed out twice. */
function random16(): Buffer {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return slice;
}

/**
 * A new MessageId: a UUID version 7 (RFC 9562), unique and ordered by creation time, so stores
 * keyed by MessageId stay append-friendly. Within one millisecond a 12-bit counter keeps order.
 */
export function newMessageId(): string {
  const bytes = Buffer.from(random16());
  let ms = Date.now();
  if (ms <= lastMs) {
    sequence = (sequence + 1) & 0xfff;
    if (sequence === 0) lastMs += 1;
    ms = lastMs;
  } else {
    lastMs = ms;
    sequence = (bytes[6] ?? 0) & 0x07;
  }
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  let out = '';
  for (let i = 0; i < 16; i++) {
    out += HEX[bytes[i] ?? 0];
    if (i === 3 || i === 5 || i === 7 || i === 9) out += '-';
  }
  return out;
}

/** An unguessable identifier (128 random bits, base64url): job ids, idempotency records. */
export function newSecretId(): string {
  return random16().toString('base64url');
}

const hexPool = Buffer.allocUnsafe(4096);
let hexOffset = hexPool.length;

/**
 * `bytes` random bytes as lowercase hex, cut from a pool the CSPRNG refills in one call, so hot
 * paths (a trace id per request or message) make no system call per id. No slice is reused.
 */
export function randomHex(bytes: number): string {
  if (hexOffset + bytes > hexPool.length) {
    randomFillSync(hexPool);
    hexOffset = 0;
  }
  const hex = hexPool.toString('hex', hexOffset, hexOffset + bytes);
  hexOffset += bytes;
  return hex;
}
