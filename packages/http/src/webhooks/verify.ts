import { createHmac, timingSafeEqual } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';
import type { WebhookSecret } from './secret.js';
import { webhookKeys } from './secret.js';

export interface VerifyWebhookOptions {
  /** Largest distance between `webhook-timestamp` and now, in seconds. Default 300. */
  readonly toleranceSeconds?: number;
  /** Now, in ms since the epoch. Default `Date.now()`. */
  readonly now?: number;
}

/** A delivery whose signature verified. */
export interface VerifiedWebhook {
  readonly id: string;
  /** Seconds since the epoch. */
  readonly timestamp: number;
  /** The body as text (JSON in Switchboard's notices). */
  readonly body: string;
}

/** Request headers in any usual shape: a Fetch `Headers`, or a `node:http` header object. */
export type WebhookRequestHeaders = { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

function headerOf(headers: WebhookRequestHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    for (const key of Object.keys(record)) if (key.toLowerCase() === name) value = record[key];
  }
  return Array.isArray(value) ? value.join(' ') : (value as string | undefined);
}

function invalid(detail: string): SwitchboardError {
  return new SwitchboardError('SB_WEBHOOK_INVALID', { detail });
}

/**
 * Verifies a Standard Webhooks 1.0 delivery: the headers are present, the timestamp is within
 * `toleranceSeconds` of now (replays of old deliveries fail), and one of the `v1` signatures of
 * `webhook-signature` matches one of `secrets` (compared in constant time). Throws
 * `SwitchboardError('SB_WEBHOOK_INVALID')` otherwise. Pass the body exactly as received.
 */
export function verifyWebhook(
  headers: WebhookRequestHeaders,
  body: string | Uint8Array,
  secrets: WebhookSecret | readonly WebhookSecret[],
  options: VerifyWebhookOptions = {},
): VerifiedWebhook {
  const id = headerOf(headers, 'webhook-id');
  const stamp = headerOf(headers, 'webhook-timestamp');
  const signatures = headerOf(headers, 'webhook-signature');
  if (!id || !stamp || !signatures) throw invalid('webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,15}$/.test(stamp)) throw invalid('webhook-timestamp is not a number of seconds');
  const timestamp = Number(stamp);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - timestamp) > tolerance) throw invalid(`webhook-timestamp is more than ${tolerance} seconds away from now`);

  const offered: Buffer[] = [];
  for (const part of signatures.split(' ')) {
    const comma = part.indexOf(',');
    if (comma === -1 || part.slice(0, comma) !== 'v1') continue;
    offered.push(Buffer.from(part.slice(comma + 1), 'base64'));
  }
  if (offered.length === 0) throw invalid('webhook-signature holds no v1 signature');
  for (const key of webhookKeys(secrets)) {
    const hmac = createHmac('sha256', key);
    hmac.update(`${id}.${timestamp}.`);
    hmac.update(body);
    const expected = hmac.digest();
    for (const candidate of offered) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
        return { id, timestamp, body: typeof body === 'string' ? body : Buffer.from(body).toString('utf8') };
      }
    }
  }
  throw invalid('No signature matches');
}
