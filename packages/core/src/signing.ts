import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  hash as oneShotHash,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { dataKind } from './cloudevents/data.js';
import type { CloudEvent } from './cloudevents/event.js';
import { attributeToString } from './cloudevents/header-value.js';
import { SwitchboardError } from './errors.js';

/**
 * Signed messages. A sender signs each CloudEvent it publishes with one of its keys; a receiver
 * verifies the signature before anything else looks at the event (before the inbox), with the keys
 * allowed to publish under the event's `source`. An unsigned or wrongly signed event is a dead letter
 * with reason `signature`, so a forged event can neither run a handler nor squat a MessageId.
 *
 * The signature travels in the CloudEvents extension attribute {@link SIGNATURE_ATTRIBUTE}:
 * `<algorithm>;<key id>;<signature, base64url>`, over the canonical form of the event
 * ({@link canonicalEvent}): every context attribute and extension but the signature itself, sorted
 * by name (an implied `application/json` written out), each value in its canonical string form, then the SHA-256 of the data. Algorithms:
 * `hs256` (HMAC-SHA256, a secret shared by sender and receiver) and `ed25519` (the sender keeps the
 * private key; receivers need only the public key: for teams that cannot share secrets). Keys are
 * named by id, so a key can be rotated: sign with the new one while receivers accept both.
 */

/** The extension attribute carrying the signature. */
export const SIGNATURE_ATTRIBUTE = 'sbsignature';

export type SigningAlgorithm = 'hs256' | 'ed25519';

/** A key to sign with. */
export type SigningKey =
  | { readonly id: string; readonly algorithm: 'hs256'; readonly secret: string | Uint8Array }
  /** `privateKey`: a `KeyObject`, a PEM string, or a JWK (`{ kty: 'OKP', crv: 'Ed25519', d, x }`). */
  | { readonly id: string; readonly algorithm: 'ed25519'; readonly privateKey: KeyObject | string | JsonWebKey };

/** A key to verify with. */
export type VerificationKey =
  | { readonly id: string; readonly algorithm: 'hs256'; readonly secret: string | Uint8Array }
  /** `publicKey`: a `KeyObject`, a PEM string, or a JWK (`{ kty: 'OKP', crv: 'Ed25519', x }`). */
  | { readonly id: string; readonly algorithm: 'ed25519'; readonly publicKey: KeyObject | string | JsonWebKey };

/**
 * Which keys may sign under which `source`: the binding of a source to its keys. A source that is
 * not listed cannot publish at all (every event from it fails verification).
 */
export type TrustedSources = Readonly<Record<string, readonly VerificationKey[]>>;

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The canonical form of an event that a signature covers (without its own signature attribute).
 * JSON data without a `datacontenttype` counts as `application/json`, as the JSON format says and
 * as binary mode writes it.
 */
export function canonicalEvent(event: CloudEvent): string {
  const attributes: [string, string][] = [
    ['specversion', event.specversion],
    ['id', event.id],
    ['source', event.source],
    ['type', event.type],
  ];
  // Binary mode cannot carry the JSON format's implied `application/json` and writes it out, so
  // the signature covers it written out: the event verifies in either mode.
  const datacontenttype =
    event.datacontenttype ?? (event.data !== undefined && !(event.data instanceof Uint8Array) ? 'application/json' : undefined);
  if (datacontenttype !== undefined) attributes.push(['datacontenttype', datacontenttype]);
  if (event.dataschema !== undefined) attributes.push(['dataschema', event.dataschema]);
  if (event.subject !== undefined) attributes.push(['subject', event.subject]);
  if (event.time !== undefined) attributes.push(['time', event.time]);
  const extensions = event.extensions;
  if (extensions !== undefined) {
    for (const name of Object.keys(extensions)) {
      const value = extensions[name];
      if (value !== undefined && name !== SIGNATURE_ATTRIBUTE) attributes.push([name, attributeToString(value)]);
    }
  }
  attributes.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let out = 'sbsig1\n';
  for (const [name, value] of attributes) out += `${name}=${JSON.stringify(value)}\n`;
  return `${out}data=${dataDigest(event.data, datacontenttype)}\n`;
}

/**
 * SHA-256 (lowercase hex) of the data, as its `datacontenttype` says to read it, so that the digest
 * is the same in binary and structured mode and in any language:
 * - JSON (`datacontenttype` absent, `application/json`, `*+json`): the RFC 8785 (JCS) canonical
 *   JSON text of the value, in UTF-8. Data held as bytes (a sender's encoded JSON) is parsed first.
 * - text (`text/*`, XML): the UTF-8 bytes of the text (whatever charset carried it).
 * - anything else (and bytes without a `datacontenttype`): the bytes.
 * - no data: `-`.
 */
export function dataDigest(data: unknown, datacontenttype?: string): string {
  if (data === undefined) return '-';
  const kind = datacontenttype === undefined && data instanceof Uint8Array ? 'bytes' : dataKind(datacontenttype);
  if (kind === 'json') {
    if (!(data instanceof Uint8Array)) return sha256Hex(canonicalJson(data));
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
    } catch {
      // Not JSON although said to be: no decoder reads such an event; its bytes are what there is.
      return sha256Hex(data);
    }
    return sha256Hex(canonicalJson(value));
  }
  if (data instanceof Uint8Array || typeof data === 'string') return sha256Hex(data);
  return sha256Hex(canonicalJson(data));
}

/** One-shot SHA-256 (`crypto.hash`, Node 20.12+), lowercase hex. Strings are hashed as UTF-8. */
function sha256Hex(data: string | Uint8Array): string {
  return oneShotHash('sha256', data, 'hex');
}

/**
 * RFC 8785 JSON Canonicalization Scheme: no whitespace, object members sorted by the UTF-16 code
 * units of their names, numbers and strings as ECMAScript `JSON.stringify` writes them (which is
 * what RFC 8785 specifies). Members whose value is `undefined` are left out, as JSON has none.
 */
export function canonicalJson(value: unknown): string {
  // Most values already have their members in order: then JSON.stringify writes exactly RFC 8785.
  return inCanonicalOrder(value, 0) ? (JSON.stringify(value) ?? 'null') : walk(value);
}

/** Whether every object in `value` has its members sorted and nothing JSON.stringify would treat specially. */
function inCanonicalOrder(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object')
    return typeof value !== 'undefined' && typeof value !== 'function' && typeof value !== 'bigint';
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (item === undefined || !inCanonicalOrder(item, depth + 1)) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  let previous: string | undefined;
  for (const name in value) {
    if (!Object.hasOwn(value, name)) return false;
    if (previous !== undefined && !(previous < name)) return false;
    const member = (value as Record<string, unknown>)[name];
    if (member === undefined || !inCanonicalOrder(member, depth + 1)) return false;
    previous = name;
  }
  return true;
}

function walk(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + walk(value[i] === undefined ? null : value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const names = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const name of names) {
    const member = record[name];
    if (member === undefined || typeof member === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(name)}:${walk(member)}`;
    first = false;
  }
  return `${out}}`;
}

/** Signs with one key; its `sign` returns the attribute value for a canonical form. */
export interface MessageSigner {
  readonly keyId: string;
  sign(canonical: string): string;
}

/** A signer for `key`; `SB_CONFIG_INVALID` for a malformed key. */
export function createSigner(key: SigningKey): MessageSigner {
  if (!KEY_ID.test(key.id)) throw config(`signing key id ${JSON.stringify(key.id)} must be 1-64 of A-Z a-z 0-9 . _ -`);
  if (key.algorithm === 'hs256') {
    const secret = secretBytes(key.secret, key.id);
    const prefix = `hs256;${key.id};`;
    return { keyId: key.id, sign: (canonical) => prefix + createHmac('sha256', secret).update(canonical, 'utf8').digest('base64url') };
  }
  const privateKey = asKey(key.privateKey, 'private', key.id);
  const prefix = `ed25519;${key.id};`;
  return { keyId: key.id, sign: (canonical) => prefix + sign(null, Buffer.from(canonical, 'utf8'), privateKey).toString('base64url') };
}

/** Signs `event`: the same event with its signature attribute set. */
export function signEvent(event: CloudEvent, signer: MessageSigner): CloudEvent {
  const { [SIGNATURE_ATTRIBUTE]: _old, ...others } = event.extensions ?? {};
  const unsigned: CloudEvent = { ...event, extensions: others };
  return { ...event, extensions: { ...others, [SIGNATURE_ATTRIBUTE]: signer.sign(canonicalEvent(unsigned)) } };
}

/** Why an event fails verification: `missing`, `malformed`, `untrusted-source`, `unknown-key`, `mismatch`. */
export type SignatureProblem = 'missing' | 'malformed' | 'untrusted-source' | 'unknown-key' | 'mismatch';

interface PreparedKey {
  readonly algorithm: SigningAlgorithm;
  readonly secret?: Buffer;
  readonly publicKey?: KeyObject;
}

/** Verifies events against the keys each source may sign with. */
export interface MessageVerifier {
  /** `undefined` when the event carries a valid signature by a key its source is bound to; else why not. */
  check(event: CloudEvent): SignatureProblem | undefined;
}

/** A verifier for `trusted` (keys prepared once). `SB_CONFIG_INVALID` for a malformed key. */
export function createVerifier(trusted: TrustedSources): MessageVerifier {
  const bySource = new Map<string, Map<string, PreparedKey>>();
  for (const [source, keys] of Object.entries(trusted)) {
    const prepared = new Map<string, PreparedKey>();
    for (const key of keys) {
      if (!KEY_ID.test(key.id)) throw config(`verification key id ${JSON.stringify(key.id)} of ${source} is malformed`);
      prepared.set(
        key.id,
        key.algorithm === 'hs256'
          ? { algorithm: 'hs256', secret: secretBytes(key.secret, key.id) }
          : { algorithm: 'ed25519', publicKey: asKey(key.publicKey, 'public', key.id) },
      );
    }
    bySource.set(source, prepared);
  }
  return {
    check(event) {
      const value = event.extensions?.[SIGNATURE_ATTRIBUTE];
      if (value === undefined) return 'missing';
      if (typeof value !== 'string') return 'malformed';
      const first = value.indexOf(';');
      const second = value.indexOf(';', first + 1);
      if (first < 1 || second < 0) return 'malformed';
      const algorithm = value.slice(0, first);
      const keyId = value.slice(first + 1, second);
      const signature = Buffer.from(value.slice(second + 1), 'base64url');
      const keys = bySource.get(event.source);
      if (keys === undefined) return 'untrusted-source';
      const key = keys.get(keyId);
      if (key === undefined) return 'unknown-key';
      if (key.algorithm !== algorithm) return 'mismatch';
      let canonical: Buffer;
      try {
        canonical = Buffer.from(canonicalEvent(event), 'utf8');
      } catch {
        // Data no canonical form exists for (JSON nested past what can be walked): it cannot verify.
        return 'mismatch';
      }
      if (key.algorithm === 'hs256') {
        const expected = createHmac('sha256', key.secret!).update(canonical).digest();
        return signature.length === expected.length && timingSafeEqual(signature, expected) ? undefined : 'mismatch';
      }
      try {
        return verify(null, canonical, key.publicKey!, signature) ? undefined : 'mismatch';
      } catch {
        return 'mismatch';
      }
    },
  };
}

/**
 * Signing for one service: the key it signs what it publishes with, the keys it verifies with, and
 * which sources each key may sign for. Rotation: list the new key under the source next to the old
 * one on every receiver, then sign with the new one, then drop the old one.
 */
export interface SigningOptions {
  /** The key this service signs everything it publishes with. Its own `source` may always sign with it. */
  readonly sign?: SigningKey;
  readonly verify?: {
    /** Every key this service verifies with, by id (secrets for `hs256`, public keys for `ed25519`). */
    readonly keys: readonly VerificationKey[];
    /** The key ids allowed to sign under each `source`. A source not listed cannot publish to this service. */
    readonly sources: Readonly<Record<string, readonly string[]>>;
  };
  /**
   * Refuse events without a signature. Default `true`. `false` accepts unsigned events (while senders
   * are being rolled out); a signature that is present is checked all the same.
   */
  readonly require?: boolean;
}

/** What a service does with its {@link SigningOptions}, prepared once. */
export interface MessageSigning {
  readonly signer: MessageSigner | undefined;
  /** `undefined`: the event may be taken; else why it must be refused. */
  check(event: CloudEvent): SignatureProblem | undefined;
}

/**
 * Prepares `options` for `service` (its own source trusts its signing key). `SB_CONFIG_INVALID` for
 * a malformed key, a key id listed twice, or a source naming a key that is not in `keys`.
 */
export function createMessageSigning(options: SigningOptions, service: string): MessageSigning {
  const signer = options.sign === undefined ? undefined : createSigner(options.sign);
  const ring = new Map<string, VerificationKey>();
  for (const key of options.verify?.keys ?? []) {
    if (ring.has(key.id)) throw config(`verification key id ${JSON.stringify(key.id)} is listed twice`);
    ring.set(key.id, key);
  }
  const trusted: Record<string, VerificationKey[]> = {};
  for (const [source, ids] of Object.entries(options.verify?.sources ?? {})) {
    trusted[source] = ids.map((id) => {
      const key = ring.get(id);
      if (key === undefined) throw config(`source ${JSON.stringify(source)} names key ${JSON.stringify(id)}, which is not in verify.keys`);
      return key;
    });
  }
  if (options.sign !== undefined) {
    const own = options.sign;
    const mine = trusted[service] ?? [];
    if (!mine.some((key) => key.id === own.id)) {
      mine.push(
        own.algorithm === 'hs256'
          ? { id: own.id, algorithm: 'hs256', secret: own.secret }
          : { id: own.id, algorithm: 'ed25519', publicKey: asKey(own.privateKey, 'private', own.id) },
      );
    }
    trusted[service] = mine;
  }
  const verifier = createVerifier(trusted);
  const required = options.require ?? true;
  return {
    signer,
    check(event) {
      const problem = verifier.check(event);
      return problem === 'missing' && !required ? undefined : problem;
    },
  };
}

const PROBLEM_TEXT: Readonly<Record<SignatureProblem, string>> = {
  missing: 'the event carries no signature (sbsignature)',
  malformed: 'the signature attribute is not <algorithm>;<key id>;<signature>',
  'untrusted-source': 'no key may sign for the event source',
  'unknown-key': 'the key is not one the event source may sign with',
  mismatch: 'the signature does not match the event',
};

/** `SB_SIGNATURE_INVALID` for a verification verdict, with a fixed text naming the problem. */
export function signatureError(problem: SignatureProblem): SwitchboardError {
  return new SwitchboardError('SB_SIGNATURE_INVALID', { detail: PROBLEM_TEXT[problem] });
}

function secretBytes(secret: string | Uint8Array, id: string): Buffer {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (bytes.length < 32) throw config(`the secret of key ${id} must be at least 32 bytes (HMAC-SHA256 wants 256 bits)`);
  return bytes;
}

function asKey(key: KeyObject | string | JsonWebKey, kind: 'private' | 'public', id: string): KeyObject {
  let object: KeyObject;
  try {
    if (typeof key === 'string') object = kind === 'private' ? createPrivateKey(key) : createPublicKey(key);
    else if ('type' in key && typeof (key as KeyObject).export === 'function') object = key as KeyObject;
    else
      object =
        kind === 'private'
          ? createPrivateKey({ key: key as JsonWebKey, format: 'jwk' })
          : createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `key ${id} is not a valid Ed25519 ${kind} key`, cause });
  }
  if (object.asymmetricKeyType !== 'ed25519') throw config(`key ${id} must be an Ed25519 key, got ${object.asymmetricKeyType}`);
  if (kind === 'private' && object.type !== 'private') throw config(`key ${id} must be a private key`);
  return kind === 'public' && object.type === 'private' ? createPublicKey(object) : object;
}

function config(detail: string): SwitchboardError {
  return new SwitchboardError('SB_CONFIG_INVALID', { detail });
}
