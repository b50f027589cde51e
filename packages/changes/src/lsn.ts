/**
 * PostgreSQL log sequence numbers: 64-bit positions in the write-ahead log, written `X/Y` (the high
 * and low 32 bits in upper-case hex). Kept as `bigint`: a busy server passes 2^53 bytes of WAL in
 * a few years.
 */

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses `X/Y`; throws a `TypeError` for anything else. */
export function parseLsn(text: string): bigint {
  const match = LSN.exec(text);
  if (match === null) throw new TypeError(`not an LSN: ${text}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** `X/Y`, as PostgreSQL writes it. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
