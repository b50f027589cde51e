import { createHmac } from 'node:crypto';
import type { WebhookSecret } from './secret.js';
import { webhookKeys } from './secret.js';

/** The three Standard Webhooks 1.0 headers of one delivery attempt. */
export type WebhookHeaders = {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
};

function signatureOf(key: Buffer, id: string, timestamp: number, body: string | Uint8Array): string {
  const hmac = createHmac('sha256', key);
  hmac.update(`${id}.${timestamp}.`);
  hmac.update(body);
  return `v1,${hmac.digest('base64')}`;
}

/**
 * Signs `body` as Standard Webhooks 1.0 does: `v1,` + base64 of HMAC-SHA256 over
 * `"{id}.{timestamp}.{body}"`, keyed by the secret's decoded bytes. With several secrets (during a
 * key rotation) the signatures are joined by spaces, so a receiver knowing any one of them verifies.
 */
export function signWebhook(
  secrets: WebhookSecret | readonly WebhookSecret[],
  id: string,
  timestamp: number,
  body: string | Uint8Array,
): string {
  return webhookKeys(secrets)
    .map((key) => signatureOf(key, id, timestamp, body))
    .join(' ');
}

/** The headers to send with `body`; `timestamp` is in seconds since the epoch (default now). */
export function webhookHeaders(
  secrets: WebhookSecret | readonly WebhookSecret[],
  id: string,
  body: string | Uint8Array,
  timestamp: number = Math.floor(Date.now() / 1000),
): WebhookHeaders {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secrets, id, timestamp, body),
  };
}
