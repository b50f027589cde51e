import type { Dispatcher } from 'undici';
import { headersOf } from './forward.js';
import { failFast } from './policy.js';

/** Gives the bearer token for the next request, or `undefined` to send none. */
export type TokenProvider = () => Promise<string | undefined>;

/**
 * Authentication: asks `provider` for a token before every attempt (so a refreshed token is used
 * by a retry) and sends it as `Authorization: Bearer <token>`. A provider that fails fails the
 * request, with its error as the cause.
 */
export function auth(provider: TokenProvider): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    provider().then(
      (token) => {
        // A copy: the token must not stay on a header record a retry or the caller reuses.
        dispatch(token === undefined ? opts : { ...opts, headers: { ...headersOf(opts), authorization: `Bearer ${token}` } }, handler);
      },
      (error: unknown) => failFast(handler, new AuthError(error)),
    );
    return true;
  };
}

/** The token provider failed. */
export class AuthError extends Error {
  constructor(cause: unknown) {
    super('The token provider failed', { cause });
    this.name = 'AuthError';
  }
}
