import { randomBytes } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';

/** A signing secret: `whsec_<base64>` (Standard Webhooks), bare base64, or the raw key bytes. */
export type WebhookSecret = string | Uint8Array;

const PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The HMAC key a secret stands for: the bytes after `whsec_`, base64-decoded. */
export function webhookKey(secret: WebhookSecret): Buffer {
  if (typeof secret !== 'string') return Buffer.from(secret);
  const encoded = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'A webhook secret must be whsec_ followed by base64' });
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < 16) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'A webhook secret must hold at least 16 bytes' });
  return key;
}

/** A new random secret in the Standard Webhooks form (`whsec_` + base64 of 32 random bytes). */
export function generateWebhookSecret(bytes = 32): string {
  return `${PREFIX}${randomBytes(bytes).toString('base64')}`;
}

export function webhookKeys(secrets: WebhookSecret | readonly WebhookSecret[]): Buffer[] {
  const list = typeof secrets === 'string' || secrets instanceof Uint8Array ? [secrets] : [...secrets];
  if (list.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'At least one webhook secret is needed' });
  return list.map(webhookKey);
}
