/**
 * Publish→handler latency across processes: every message body starts with the publish time, read
 * from the monotonic clock, which is one clock for every process of the host.
 */
export function clockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A body of `bytes` bytes (at least 8) filled with a fixed pattern. */
export function bodyTemplate(bytes: number): Buffer {
  return Buffer.alloc(Math.max(8, bytes), 'switchboard-bench ');
}

/** A copy of `template` stamped with the current time. */
export function stampedBody(template: Buffer): Buffer {
  const body = Buffer.allocUnsafe(template.length);
  template.copy(body);
  body.writeDoubleLE(clockMs(), 0);
  return body;
}

/** The publish time written by `stampedBody`, or NaN when the body is too short. */
export function readStamp(body: Uint8Array): number {
  if (body.byteLength < 8) return Number.NaN;
  return new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true);
}
