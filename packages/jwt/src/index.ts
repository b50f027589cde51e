import type { IncomingMessage } from 'node:http';
import { SwitchboardError } from '@switchboard/core';
import type { Authenticator, AuthFailure, Principal, Verification } from '@switchboard/http';
import { bearerChallenge } from '@switchboard/http';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify } from 'jose';

/** Asymmetric algorithms only: a JWKS holds public keys, and `none` is never accepted. */
export const DEFAULT_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

export interface JwtAuthenticatorOptions {
  /**
   * Where the signing keys are: the JWKS URL of the issuer (fetched on first use and when a token
   * names a key it does not know, at most every `jwksCooldownMs`), or a key set given inline.
   */
  readonly jwks: string | URL | JSONWebKeySet;
  /** The accepted `iss` (one or several). Required: a token of another issuer is refused. */
  readonly issuer: string | readonly string[];
  /** The accepted `aud`: this service's name as the issuer knows it. Required. */
  readonly audience: string | readonly string[];
  /** Accepted `alg` values. Default {@link DEFAULT_ALGORITHMS}. */
  readonly algorithms?: readonly string[];
  /** Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 30. */
  readonly clockToleranceSeconds?: number;
  /** Refuse tokens without `exp`. Default true. */
  readonly requireExpiry?: boolean;
  /** The principal's id from the verified claims. Default `sub` (a token without one is refused). */
  readonly principal?: (payload: JWTPayload) => string | undefined;
  /** The scopes from the verified claims. Default: `scope` (space-separated) and `scp` (array or string). */
  readonly scopes?: (payload: JWTPayload) => readonly string[];
  /**
   * Verified tokens are remembered (by the exact token text) until their `exp` and at most this
   * long, so a client that reuses its token pays for the signature check once; a key removed from
   * the JWKS stops being honoured within this time. 0 turns the cache off. Default 60 000 ms.
   */
  readonly cacheTtlMs?: number;
  /** Most tokens remembered. Default 10 000. */
  readonly cacheSize?: number;
  /** Of a remote JWKS: fetch timeout (default 5 000 ms), least time between fetches (default 30 000 ms), how long a fetched set is kept (default 600 000 ms). */
  readonly jwksTimeoutMs?: number;
  readonly jwksCooldownMs?: number;
  readonly jwksMaxAgeMs?: number;
}

const MISSING: AuthFailure = { failure: 'missing', detail: 'No bearer token' };
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

interface Remembered {
  readonly principal: Principal;
  readonly until: number;
}

/**
 * JWT bearer tokens (RFC 6750, RFC 7519) checked with `jose` against a JWKS: signature, `alg` in
 * the allowed list, `iss`, `aud`, `exp`/`nbf` with clock skew. The principal is the token's `sub`,
 * with the scopes of its `scope`/`scp` claim.
 *
 * ```ts
 * createHttpService({ contract, handlers, auth: { authenticators: [jwtAuthenticator({
 *   jwks: 'https://id.example.com/.well-known/jwks.json', issuer: 'https://id.example.com/', audience: 'service-b',
 * })] } });
 * ```
 */
export function jwtAuthenticator(options: JwtAuthenticatorOptions): Authenticator {
  const keys = keySet(options);
  const issuer = list('issuer', options.issuer);
  const audience = list('audience', options.audience);
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  if (algorithms.length === 0 || algorithms.some((a) => a.toLowerCase() === 'none' || a.startsWith('HS'))) {
    throw config('algorithms must be asymmetric JWS algorithms (no none, no HS*: the keys come from a JWKS)');
  }
  const clockTolerance = options.clockToleranceSeconds ?? 30;
  if (!(clockTolerance >= 0)) throw config('clockToleranceSeconds must be 0 or more');
  const cacheTtlMs = options.cacheTtlMs ?? 60_000;
  const cacheSize = options.cacheSize ?? 10_000;
  const principalOf = options.principal ?? ((payload: JWTPayload) => payload.sub);
  const scopesOf = options.scopes ?? defaultScopes;
  const cache = new Map<string, Remembered>();
  const verifyOptions = {
    issuer,
    audience,
    algorithms,
    clockTolerance,
    requiredClaims: options.requireExpiry === false ? [] : ['exp'],
  };

  const verifyToken = async (token: string): Promise<Verification> => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, verifyOptions));
    } catch (error) {
      return refusalOf(error);
    }
    const id = principalOf(payload);
    if (typeof id !== 'string' || id === '') return { failure: 'invalid', detail: 'The token names no subject' };
    const principal: Principal = { id, scopes: scopesOf(payload), scheme: 'bearer', claims: payload };
    if (cacheTtlMs > 0) {
      const now = Date.now();
      const until = Math.min(typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY, now + cacheTtlMs);
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(token, { principal, until });
    }
    return principal;
  };

  return {
    scheme: 'bearer',
    verify(req: IncomingMessage): Verification | Promise<Verification> {
      const header = req.headers.authorization;
      if (header === undefined || header === '') return MISSING;
      if (!/^bearer(?: |$)/i.test(header)) return MISSING;
      const match = BEARER.exec(header);
      if (match === null) return { failure: 'invalid', detail: 'The Authorization header is not Bearer <token>' };
      const token = match[1] as string;
      const known = cache.get(token);
      if (known !== undefined) {
        if (Date.now() < known.until) return known.principal;
        cache.delete(token);
      }
      return verifyToken(token);
    },
    challenge: bearerChallenge,
  };
}

function keySet(options: JwtAuthenticatorOptions): JWTVerifyGetKey {
  const jwks = options.jwks;
  if (typeof jwks === 'string' || jwks instanceof URL) {
    let url: URL;
    try {
      url = new URL(jwks);
    } catch {
      throw config(`jwks is not a URL: ${String(jwks)}`);
    }
    return createRemoteJWKSet(url, {
      timeoutDuration: options.jwksTimeoutMs ?? 5_000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: options.jwksMaxAgeMs ?? 600_000,
    });
  }
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray(jwks.keys)) throw config('jwks must be a URL or { keys: [...] }');
  return createLocalJWKSet(jwks);
}

/** Why jose refused: the token's fault (401 with a reason) or the key source's (503). */
function refusalOf(error: unknown): AuthFailure {
  if (error instanceof errors.JWTExpired) return { failure: 'invalid', detail: 'The token has expired' };
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    const detail =
      claim === 'iss'
        ? 'The token was issued by an issuer this service does not accept'
        : claim === 'aud'
          ? 'The token is meant for another audience'
          : claim === 'nbf'
            ? 'The token is not valid yet'
            : claim === 'exp'
              ? 'The token has no expiry'
              : `The token's ${claim} claim is not accepted`;
    return { failure: 'invalid', detail };
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return { failure: 'invalid', detail: 'The token is signed with an algorithm this service does not accept' };
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return { failure: 'invalid', detail: 'The token signature is not valid' };
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return { failure: 'invalid', detail: 'The token is signed with a key the issuer does not publish' };
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JWKInvalid) {
    return { failure: 'invalid', detail: 'The token is malformed' };
  }
  // The key set could not be fetched or read (network, timeout, not a JWKS): not the caller's fault.
  return { failure: 'unavailable', detail: 'The signing keys could not be fetched' };
}

function defaultScopes(payload: JWTPayload): readonly string[] {
  const scopes: string[] = [];
  const add = (value: unknown): void => {
    if (typeof value === 'string') scopes.push(...value.split(' ').filter((s) => s !== ''));
    else if (Array.isArray(value)) for (const item of value) if (typeof item === 'string' && item !== '') scopes.push(item);
  };
  add(payload.scope);
  add(payload.scp);
  return scopes;
}

function list(name: string, value: string | readonly string[]): string[] {
  const values = typeof value === 'string' ? [value] : Array.isArray(value) ? [...value] : [];
  if (values.length === 0 || values.some((v) => typeof v !== 'string' || v === ''))
    throw config(`${name} must be a non-empty string or list`);
  return values;
}

function config(detail: string): SwitchboardError {
  return new SwitchboardError('SB_CONFIG_INVALID', { detail: `jwtAuthenticator: ${detail}` });
}
