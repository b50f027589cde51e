import { createHmac } from 'node:crypto';
import { isSwitchboardError } from '@switchboard/core';
import { callbackPolicy, generateWebhookSecret, signWebhook, verifyWebhook, webhookHeaders } from '@switchboard/http';
import { describe, expect, it } from 'vitest';

// The example published with the Standard Webhooks specification.
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isSwitchboardError(error) ? error.code : 'not a SwitchboardError';
  }
  return undefined;
}

describe('Standard Webhooks signing and verification', () => {
  it('reproduces the specification example', () => {
    expect(signWebhook(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body)).toBe(SPEC.signature);
    const headers = { 'webhook-id': SPEC.id, 'webhook-timestamp': String(SPEC.timestamp), 'webhook-signature': SPEC.signature };
    expect(verifyWebhook(headers, SPEC.body, SPEC.secret, { now: SPEC.timestamp * 1000 })).toEqual({
      id: SPEC.id,
      timestamp: SPEC.timestamp,
      body: SPEC.body,
    });
  });

  it('computes base64 HMAC-SHA256 of "id.timestamp.body" keyed by the decoded secret', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const body = JSON.stringify({ type: 'job.succeeded', data: { id: 'x' } });
    const expected = createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`msg_1.1700000000.${body}`)
      .digest('base64');
    expect(signWebhook(secret, 'msg_1', 1_700_000_000, body)).toBe(`v1,${expected}`);
    expect(signWebhook(Buffer.from(secret.slice(6), 'base64'), 'msg_1', 1_700_000_000, body)).toBe(`v1,${expected}`);
  });

  it('signs with every secret during a key rotation; a receiver with either verifies', () => {
    const [old, next] = [generateWebhookSecret(), generateWebhookSecret()];
    const body = '{"a":1}';
    const headers = webhookHeaders([next, old], 'msg_2', body, 1_700_000_000);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    const now = 1_700_000_010_000;
    expect(verifyWebhook(headers, body, old, { now }).id).toBe('msg_2');
    expect(verifyWebhook(new Headers({ ...headers }), body, [next], { now }).id).toBe('msg_2');
    expect(codeOf(() => verifyWebhook(headers, body, generateWebhookSecret(), { now }))).toBe('SB_WEBHOOK_INVALID');
  });

  it('rejects tampered bodies, stale or future timestamps, missing headers and foreign schemes', () => {
    const secret = generateWebhookSecret();
    const body = '{"ok":true}';
    const headers = webhookHeaders(secret, 'msg_3', body, 1_700_000_000);
    const now = 1_700_000_000_000;
    expect(codeOf(() => verifyWebhook(headers, '{"ok":false}', secret, { now }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook(headers, body, secret, { now: now + 301_000 }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook(headers, body, secret, { now: now - 301_000 }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook(headers, body, secret, { now: now + 3_600_000, toleranceSeconds: 7_200 }))).toBeUndefined();
    expect(codeOf(() => verifyWebhook({ ...headers, 'webhook-id': 'msg_4' }, body, secret, { now }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook({ 'webhook-id': 'msg_3' }, body, secret, { now }))).toBe('SB_WEBHOOK_INVALID');
    const v2 = { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v2,') };
    expect(codeOf(() => verifyWebhook(v2, body, secret, { now }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook({ ...headers, 'webhook-timestamp': 'soon' }, body, secret, { now }))).toBe('SB_WEBHOOK_INVALID');
    expect(codeOf(() => verifyWebhook(headers, body, 'whsec_!!', { now }))).toBe('SB_CONFIG_INVALID');
  });
});

describe('callback allow-list', () => {
  const check = callbackPolicy([
    'https://hooks.example.com',
    'partner.example.org:9000',
    '*.internal.example:443',
    'http://127.0.0.1:8080',
  ]);
  const verdict = (url: string) => codeOf(() => check(url)) ?? 'allowed';

  it('allows listed origins, hosts and subdomains', () => {
    expect(verdict('https://hooks.example.com/jobs?x=1')).toBe('allowed');
    expect(verdict('http://partner.example.org:9000/cb')).toBe('allowed');
    expect(verdict('https://partner.example.org:9000/cb')).toBe('allowed');
    expect(verdict('https://a.b.internal.example/cb')).toBe('allowed');
    expect(verdict('http://127.0.0.1:8080/hook')).toBe('allowed');
  });

  it('refuses everything else with SB_CALLBACK_NOT_ALLOWED', () => {
    for (const url of [
      'http://hooks.example.com/jobs', // other scheme than the listed origin
      'https://hooks.example.com:444/', // other port
      'https://hooks.example.com.evil.test/',
      'https://internal.example/', // the wildcard covers subdomains only
      'https://partner.example.org/cb', // a host entry allows its own port only
      'http://a.internal.example:8080/', // and so does a wildcard entry
      'http://127.0.0.1:8081/',
      'http://169.254.169.254/latest/meta-data',
      'https://user:pass@hooks.example.com/',
      'file:///etc/passwd',
      'not a url',
      `https://hooks.example.com/${'x'.repeat(3000)}`,
    ]) {
      expect(verdict(url), url).toBe('SB_CALLBACK_NOT_ALLOWED');
    }
    expect(codeOf(() => callbackPolicy([])('https://hooks.example.com/'))).toBe('SB_CALLBACK_NOT_ALLOWED');
  });

  it('refuses host and wildcard entries without a port at configuration', () => {
    for (const entry of ['partner.example.org', '*.internal.example', '127.0.0.1', '[::1]', 'host:99999', '']) {
      expect(
        codeOf(() => callbackPolicy([entry])),
        entry,
      ).toBe('SB_CONFIG_INVALID');
    }
    expect(codeOf(() => callbackPolicy(['[::1]:8080'])('http://[::1]:8080/hook'))).toBeUndefined();
  });
});
