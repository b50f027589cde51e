import { SwitchboardError } from '@switchboard/core';
import type { TokenProvider } from './auth.js';

export interface CachedTokenOptions {
  /**
   * Ask for a new token this long before the cached one expires (so no request leaves with a token
   * about to expire on the way). Default 30 000 ms.
   */
  readonly refreshBeforeMs?: number;
  /**
   * How long a token whose expiry cannot be read (not a JWT, or a JWT without `exp`) is kept.
   * Default 60 000 ms; 0 asks for every request.
   */
  readonly opaqueTtlMs?: number;
  /** The clock (tests). Default `Date.now`. */
  readonly now?: () => number;
}

/** A token provider that remembers its token until expiry; `invalidate()` drops it (after a 401). */
export interface CachedTokenProvider extends TokenProvider {
  invalidate(): void;
  /** The remembered token while it is fresh, else `undefined` (then call the provider): lets the transport skip a promise per request. */
  current(): string | undefined;
}

/**
 * Wraps `fetchToken` (which obtains a token: an OAuth client-credentials request, a file a sidecar
 * refreshes, ...) so that it is called only when needed: the token is kept until `refreshBeforeMs`
 * before its JWT `exp` (read from the payload, not verified: the client only needs to know when to
 * refresh), concurrent requests share one fetch, and a failed fetch is not kept (the next request
 * tries again). Pass the result as the `auth` option of `createClient`, `createJobsClient` or
 * `createReceiptClient`; the transport's auth interceptor calls it before every attempt, and drops
 * the cached token when the server answers 401, so the next attempt or call fetches a fresh one.
 */
export function cachedToken(fetchToken: () => Promise<string>, options: CachedTokenOptions = {}): CachedTokenProvider {
  const refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
  const opaqueTtlMs = options.opaqueTtlMs ?? 60_000;
  const now = options.now ?? Date.now;
  if (!(refreshBeforeMs >= 0) || !(opaqueTtlMs >= 0)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'cachedToken: refreshBeforeMs and opaqueTtlMs must be non-negative' });
  }
  let token: string | undefined;
  let freshUntil = 0;
  let pending: Promise<string> | undefined;
  const provider = (() => {
    if (token !== undefined && now() < freshUntil) return Promise.resolve(token);
    pending ??= fetchToken().then(
      (fetched) => {
        pending = undefined;
        if (typeof fetched !== 'string' || fetched === '') throw new TypeError('The token source gave no token');
        const expiry = jwtExpiry(fetched);
        token = fetched;
        freshUntil = expiry === undefined ? now() + opaqueTtlMs : expiry - refreshBeforeMs;
        return fetched;
      },
      (error: unknown) => {
        pending = undefined;
        throw error;
      },
    );
    return pending;
  }) as CachedTokenProvider;
  provider.current = () => (token !== undefined && now() < freshUntil ? token : undefined);
  provider.invalidate = () => {
    token = undefined;
    freshUntil = 0;
  };
  return provider;
}

/** A JWT's `exp` in epoch ms, read without verifying; undefined for anything else. */
export function jwtExpiry(token: string): number | undefined {
  const first = token.indexOf('.');
  const second = first === -1 ? -1 : token.indexOf('.', first + 1);
  if (second === -1) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'));
    const exp = (payload as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
