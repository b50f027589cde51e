/**
 * Fuzzing Standard Webhooks verification: whatever headers and body arrive, `verifyWebhook` either
 * returns the verified delivery or throws `SB_WEBHOOK_INVALID`, never anything else; a genuine
 * delivery verifies in every header shape; and no change to it verifies.
 */

import { isSwitchboardError } from '@switchboard/core';
import { generateWebhookSecret, verifyWebhook, webhookHeaders } from '@switchboard/http';
import { fuzzParameters } from '@switchboard/testkit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const secret = generateWebhookSecret();
const rotated = [generateWebhookSecret(), secret];
const NOW = 1_800_000_000_000;

const names = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;

/** Header names in any casing, and others. */
const headerName = fc.oneof(
  fc.constantFrom(...names),
  fc.constantFrom(...names).map((name) => name.toUpperCase()),
  fc.constantFrom('Webhook-Id', 'Webhook-Timestamp', 'Webhook-Signature', 'webhook-signature ', 'svix-signature'),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const headerValue = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'msg_1',
    'v1,',
    'v1,AAAA',
    'v1,%%%',
    'v2,AAAA',
    'v1a,x',
    ',',
    'v1,a v1,b',
    '0',
    '-1',
    '1e9',
    '99999999999999999999',
  ),
  fc.integer({ min: 0, max: 2 ** 40 }).map(String),
  fc.integer({ min: NOW / 1000 - 400, max: NOW / 1000 + 400 }).map(String),
  fc.base64String({ maxLength: 60 }).map((signature) => `v1,${signature}`),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.constantFrom('a', 'v1,A', ' ').map((unit) => unit.repeat(50_000)),
);

const headersRecord = fc.dictionary(headerName, fc.oneof({ weight: 4, arbitrary: headerValue }, fc.array(headerValue, { maxLength: 3 })), {
  maxKeys: 6,
});

const body = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.uint8Array({ maxLength: 200 }));

/** A header object in the other shape a server hands over: Fetch `Headers`, read through `get`. */
function asGetter(record: Readonly<Record<string, string | readonly string[]>>): { get(name: string): string | null } {
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(record)) lower.set(name.toLowerCase(), typeof value === 'string' ? value : value.join(', '));
  return { get: (name) => lower.get(name) ?? null };
}

function verdict(run: () => unknown): 'verified' | 'invalid' {
  try {
    run();
    return 'verified';
  } catch (error) {
    if (!isSwitchboardError(error, 'SB_WEBHOOK_INVALID')) throw error;
    expect(error.status).toBe(401);
    return 'invalid';
  }
}

describe('fuzz: Standard Webhooks verification', () => {
  it('answers verified or SB_WEBHOOK_INVALID for any headers and body, never anything else', () => {
    fc.assert(
      fc.property(headersRecord, body, fc.boolean(), (headers, payload, getter) => {
        const input = getter ? asGetter(headers) : headers;
        // Nothing here was signed with the secret: it never verifies.
        expect(verdict(() => verifyWebhook(input, payload, rotated, { now: NOW }))).toBe('invalid');
      }),
      fuzzParameters(800),
    );
  });

  it('verifies a genuine delivery in either header shape, and no changed copy of it', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^msg_[A-Za-z0-9]{1,30}$/),
        body,
        fc.integer({ min: -300, max: 300 }),
        fc.constantFrom('id', 'timestamp', 'signature', 'body', 'secret', 'old'),
        (id, payload, skewSeconds, changed) => {
          const timestamp = NOW / 1000 + skewSeconds;
          const headers: Record<string, string> = { ...webhookHeaders(secret, id, payload, timestamp) };
          expect(verdict(() => verifyWebhook(headers, payload, rotated, { now: NOW }))).toBe('verified');
          expect(verdict(() => verifyWebhook(asGetter(headers), payload, secret, { now: NOW }))).toBe('verified');

          let tamperedBody: string | Uint8Array = payload;
          let secrets: string | string[] = rotated;
          let now = NOW;
          switch (changed) {
            case 'id':
              headers['webhook-id'] = `${id}x`;
              break;
            case 'timestamp':
              headers['webhook-timestamp'] = String(timestamp + 1);
              break;
            case 'signature':
              headers['webhook-signature'] = headers['webhook-signature']!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
              break;
            case 'body':
              tamperedBody = typeof payload === 'string' ? `${payload} ` : new Uint8Array([...payload, 0x20]);
              break;
            case 'secret':
              secrets = [generateWebhookSecret()];
              break;
            case 'old':
              now = NOW + 301_000 + Math.max(0, skewSeconds) * 1000;
              break;
          }
          expect(verdict(() => verifyWebhook(headers, tamperedBody, secrets, { now }))).toBe('invalid');
        },
      ),
      fuzzParameters(400),
    );
  });
});
