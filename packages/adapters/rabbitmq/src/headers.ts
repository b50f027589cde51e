import type { Headers } from '@switchboard/core';

/** Ordering key of the message. */
export const KEY_HEADER = 'x-sb-key';
/** Attempts already made before the message was parked in a delay queue. */
export const ATTEMPT_HEADER = 'x-sb-attempt';

/** Headers the server adds on redelivery and dead-lettering; not part of the message. */
const SERVER_HEADERS = new Set(['x-death', 'x-delivery-count', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']);
const OWN_HEADERS = new Set([KEY_HEADER, ATTEMPT_HEADER]);

export function toAmqpHeaders(headers: Headers, key: string | undefined): Record<string, string> {
  const out: Record<string, string> = { ...headers };
  if (key !== undefined) out[KEY_HEADER] = key;
  return out;
}

function asString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

export interface ReceivedHeaders {
  readonly headers: Headers;
  readonly key: string | undefined;
  /** Attempts made before the last trip through a delay queue. */
  readonly priorAttempts: number;
  /** `x-delivery-count` set by quorum queues on redelivery, if any. */
  readonly deliveryCount: number | undefined;
}

export function fromAmqpHeaders(source: Record<string, unknown> | undefined): ReceivedHeaders {
  const headers: Record<string, string> = {};
  let key: string | undefined;
  let priorAttempts = 0;
  let deliveryCount: number | undefined;
  for (const [name, value] of Object.entries(source ?? {})) {
    if (value === undefined || value === null) continue;
    if (name === KEY_HEADER) key = asString(value);
    else if (name === ATTEMPT_HEADER) priorAttempts = Number(value) || 0;
    else if (name === 'x-delivery-count') deliveryCount = Number(value);
    else if (!SERVER_HEADERS.has(name) && !OWN_HEADERS.has(name)) headers[name] = asString(value);
  }
  return { headers, key, priorAttempts, deliveryCount };
}
