import type { IncomingMessage } from 'node:http';

/**
 * Who made a request, as an {@link Authenticator} established it. `id` is what the rest of
 * Switchboard keys on: `ctx.principal`, the owner of a job, the scope of an `Idempotency-Key`, the
 * sender stored with a receipt.
 */
export interface Principal {
  /** The identity: a JWT's `sub`, a client certificate's subject (unless the authenticator maps it). */
  readonly id: string;
  /** What the principal may do: a JWT's `scope`/`scp`, the scopes configured for a certificate subject. */
  readonly scopes: readonly string[];
  /** How it was established (`bearer`, `mutualTLS`, or a custom authenticator's scheme). */
  readonly scheme: string;
  /** The verified claims (a JWT's payload, a certificate's fields), for handlers that need more. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * Why an authenticator did not establish a principal:
 * - `missing`: the request carries no credentials of its kind (the next authenticator is tried);
 * - `invalid`: it carries some and they are wrong (401 with this detail, no other authenticator);
 * - `unavailable`: they could not be checked now (a JWKS that cannot be fetched: 503, retry later).
 */
export interface AuthFailure {
  readonly failure: 'missing' | 'invalid' | 'unavailable';
  /** Said in the problem's `detail` and, for bearer tokens, `error_description`. No secrets. */
  readonly detail: string;
}

export type Verification = Principal | AuthFailure;

/**
 * A pluggable verifier: reads the request's credentials and answers a principal or why not. May
 * answer synchronously (a cached token, a certificate already seen on the connection): the service
 * then adds no promise to the request. It must not read the body.
 */
export interface Authenticator {
  /** `bearer`, `mutualTLS`, or your own: the API documents' security scheme and `Principal.scheme`. */
  readonly scheme: string;
  verify(req: IncomingMessage): Verification | Promise<Verification>;
  /**
   * The `WWW-Authenticate` challenge of a 401 or 403 (RFC 9110 §11.6.1), for this failure (none: the
   * credentials are missing; a `403` passes the scopes the request lacked).
   */
  challenge(realm: string, failure?: AuthFailure, missingScopes?: readonly string[]): string;
}

/** `createHttpService({ auth })`. */
export interface AuthOptions {
  /** Tried in order; the first that establishes a principal wins, the first `invalid` answer ends the search. */
  readonly authenticators: readonly Authenticator[];
  /**
   * Scopes each operation requires, by name, over those its contract declares (`operation({ scopes })`).
   * A principal must hold every listed scope, else 403 `SB_FORBIDDEN`. An operation with none
   * needs an authenticated principal only.
   */
  readonly scopes?: Readonly<Record<string, readonly string[]>>;
  /** The `realm` of the challenges. Default: the contract's name. */
  readonly realm?: string;
}

/** Tells a failure from a principal. */
export function isAuthFailure(value: Verification): value is AuthFailure {
  return (value as AuthFailure).failure !== undefined;
}

const kPrincipal = Symbol.for('switchboard.principal');
type Tagged = IncomingMessage & { [kPrincipal]?: Principal };

/** The principal the service authenticated for this request, if any (for adapters, dashboards, routes). */
export function principalOf(req: IncomingMessage): Principal | undefined {
  return (req as Tagged)[kPrincipal];
}

export function setPrincipal(req: IncomingMessage, principal: Principal): void {
  (req as Tagged)[kPrincipal] = principal;
}

/** A quoted-string of RFC 9110 (quotes and backslashes escaped, control characters dropped). */
export function quoted(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: dropping them is the point
  return `"${value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

/** The challenge of RFC 6750 §3 for bearer tokens. */
export function bearerChallenge(realm: string, failure?: AuthFailure, missingScopes?: readonly string[]): string {
  let challenge = `Bearer realm=${quoted(realm)}`;
  if (missingScopes !== undefined) challenge += `, error="insufficient_scope", scope=${quoted(missingScopes.join(' '))}`;
  else if (failure?.failure === 'invalid') challenge += `, error="invalid_token", error_description=${quoted(failure.detail)}`;
  return challenge;
}
