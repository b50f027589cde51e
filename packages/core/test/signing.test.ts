import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type CloudEvent,
  canonicalEvent,
  canonicalJson,
  createSigner,
  createVerifier,
  dataDigest,
  SIGNATURE_ATTRIBUTE,
  signEvent,
} from '../src/index.js';

const secret = 'k'.repeat(32);
const event: CloudEvent = {
  specversion: '1.0',
  id: 'order-7',
  source: 'shop',
  type: 'shop.order.placed',
  time: '2026-12-01T10:00:00Z',
  datacontenttype: 'application/json',
  data: { total: 12, items: ['a'] },
  extensions: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', datasize: 7, urgent: true },
};

/** The same JSON value with every object's members in reverse order. */
function reorder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reorder);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v)
      .reverse()
      .map((k) => [k, reorder((v as Record<string, unknown>)[k])]),
  );
}

describe('message signatures', () => {
  it('digests JSON data in its RFC 8785 canonical form, whatever bytes carried it; text and bytes as they are', () => {
    // RFC 8785 section 3.2.2 (sorting) and 3.2.3 (numbers, strings) examples.
    expect(canonicalJson({ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '1': 'One', '\u0080': 'Control' })).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u20ac":"Euro Sign"}',
    );
    expect(
      canonicalJson(
        JSON.parse('{ "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "literals": [null, true, false] }'),
      ),
    ).toBe('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}');
    // Any JSON value: its canonical text reads back as the value, is its own canonical form, and does not depend on member order.
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(canonicalJson(reorder(v))).toBe(text);
      }),
      { numRuns: 300, seed: 20261202 },
    );
    const sha = (text: string | Uint8Array) => createHash('sha256').update(text).digest('hex');
    // The same JSON value as bytes with whitespace (binary mode, another language's encoder) or as a value.
    expect(dataDigest(Buffer.from('{ "b": [1, 2.50], "a": "x" }'), 'application/json')).toBe(sha('{"a":"x","b":[1,2.5]}'));
    expect(dataDigest({ b: [1, 2.5], a: 'x' }, 'application/cloudevents-batch+json')).toBe(sha('{"a":"x","b":[1,2.5]}'));
    expect(dataDigest('héllo', 'text/plain; charset=iso-8859-1')).toBe(sha(Buffer.from('héllo', 'utf8')));
    expect(dataDigest(new Uint8Array([0x7b]), 'application/octet-stream')).toBe(sha(Buffer.from([0x7b])));
  });

  it('covers every attribute but the signature, sorted, canonical strings, then the SHA-256 of the data', () => {
    // RFC 8785: members sorted by name, no whitespace.
    const digest = createHash('sha256').update('{"items":["a"],"total":12}').digest('hex');
    expect(canonicalEvent(event)).toBe(
      [
        'sbsig1',
        'datacontenttype="application/json"',
        'datasize="7"',
        'id="order-7"',
        'source="shop"',
        'specversion="1.0"',
        'time="2026-12-01T10:00:00Z"',
        'traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"',
        'type="shop.order.placed"',
        'urgent="true"',
        `data=${digest}`,
        '',
      ].join('\n'),
    );
    expect(dataDigest(undefined)).toBe('-');
    expect(dataDigest(new Uint8Array([1, 2]))).toBe(
      createHash('sha256')
        .update(Buffer.from([1, 2]))
        .digest('hex'),
    );
  });

  it('signs with HMAC-SHA256 exactly as the format says, and verifies what the source may sign', () => {
    const signed = signEvent(event, createSigner({ id: 'k1', algorithm: 'hs256', secret }));
    const expected = createHmac('sha256', secret).update(canonicalEvent(event)).digest('base64url');
    expect(signed.extensions?.[SIGNATURE_ATTRIBUTE]).toBe(`hs256;k1;${expected}`);
    const verifier = createVerifier({ shop: [{ id: 'k1', algorithm: 'hs256', secret }] });
    expect(verifier.check(signed)).toBeUndefined();
    expect(verifier.check(event)).toBe('missing');
    expect(verifier.check({ ...signed, data: { total: 13, items: ['a'] } })).toBe('mismatch');
    expect(verifier.check({ ...signed, subject: 'added' })).toBe('mismatch');
    expect(verifier.check({ ...signed, source: 'attacker' })).toBe('untrusted-source');
    expect(verifier.check({ ...signed, extensions: { ...signed.extensions, [SIGNATURE_ATTRIBUTE]: 'hs256;k9;AAAA' } })).toBe('unknown-key');
    expect(verifier.check({ ...signed, extensions: { ...signed.extensions, [SIGNATURE_ATTRIBUTE]: 'nonsense' } })).toBe('malformed');
  });

  it('binds a source to its own keys: another source key does not sign for it', () => {
    const verifier = createVerifier({
      shop: [{ id: 'shop-1', algorithm: 'hs256', secret }],
      billing: [{ id: 'billing-1', algorithm: 'hs256', secret: 'b'.repeat(32) }],
    });
    const forged = signEvent(event, createSigner({ id: 'billing-1', algorithm: 'hs256', secret: 'b'.repeat(32) }));
    expect(verifier.check(forged)).toBe('unknown-key');
  });

  it('rotates: events signed with the old or the new key verify while both are trusted', () => {
    const verifier = createVerifier({
      shop: [
        { id: 'k1', algorithm: 'hs256', secret },
        { id: 'k2', algorithm: 'hs256', secret: 'n'.repeat(40) },
      ],
    });
    expect(verifier.check(signEvent(event, createSigner({ id: 'k1', algorithm: 'hs256', secret })))).toBeUndefined();
    expect(verifier.check(signEvent(event, createSigner({ id: 'k2', algorithm: 'hs256', secret: 'n'.repeat(40) })))).toBeUndefined();
  });

  it('signs with Ed25519 (RFC 8032 test vector 1: the JWK import and the signature are the standard ones)', () => {
    // RFC 8032 section 7.1, TEST 1: secret key, public key, empty message, signature.
    const d = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex').toString('base64url');
    const x = Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex').toString('base64url');
    const signer = createSigner({ id: 'ed', algorithm: 'ed25519', privateKey: { kty: 'OKP', crv: 'Ed25519', d, x } });
    const signature = signer.sign('').split(';')[2]!;
    expect(Buffer.from(signature, 'base64url').toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    const verifier = createVerifier({ shop: [{ id: 'ed', algorithm: 'ed25519', publicKey: { kty: 'OKP', crv: 'Ed25519', x } }] });
    expect(verifier.check(signEvent(event, signer))).toBeUndefined();
  });

  it('refuses short HMAC secrets and keys of another kind at configuration time', () => {
    expect(() => createSigner({ id: 'k', algorithm: 'hs256', secret: 'short' })).toThrow(/at least 32 bytes/);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => createSigner({ id: 'k', algorithm: 'ed25519', privateKey })).toThrow(/Ed25519/);
    expect(() => createSigner({ id: 'bad id', algorithm: 'hs256', secret })).toThrow(/key id/);
  });
});
