import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { ForwardHandler, headersOf } from './forward.js';
import { failFast } from './policy.js';

/** Gives the bearer token for the next request, or `undefined` to send none. */
export type TokenProvider = () => Promise<string | undefined>;

/**
 * Authentication: asks `provider` for a token before every attempt (so a refreshed token is used
 * by a retry) and sends it as `Authorization: Bearer <token>`. A provider that fails fails the
 * request, with its error as the cause. When the server answers 401, a provider with an
 * `invalidate()` (`cachedToken`) is told, so the next attempt or call fetches a new token.
 */
export function auth(provider: TokenProvider): Dispatcher.DispatcherComposeInterceptor {
  const invalidate = (provider as { invalidate?: unknown }).invalidate;
  const onUnauthorized = typeof invalidate === 'function' ? () => (invalidate as () => void).call(provider) : undefined;
  return (dispatch) => (opts, handler) => {
    provider().then(
      (token) => {
        if (token === undefined) {
          dispatch(opts, handler);
          return;
        }
        // A copy: the token must not stay on a header record a retry or the caller reuses.
        const next = { ...opts, headers: { ...headersOf(opts), authorization: `Bearer ${token}` } };
        dispatch(next, onUnauthorized === undefined ? handler : new UnauthorizedHandler(handler, onUnauthorized));
      },
      (error: unknown) => failFast(handler, new AuthError(error)),
    );
    return true;
  };
}

class UnauthorizedHandler extends ForwardHandler {
  readonly #onUnauthorized: () => void;

  constructor(next: Dispatcher.DispatchHandler, onUnauthorized: () => void) {
    super(next);
    this.#onUnauthorized = onUnauthorized;
  }

  override onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    message?: string,
  ): void {
    if (status === 401) this.#onUnauthorized();
    super.onResponseStart(controller, status, headers, message);
  }
}

/** The token provider failed. */
export class AuthError extends Error {
  constructor(cause: unknown) {
    super('The token provider failed', { cause });
    this.name = 'AuthError';
  }
}
