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
  const { invalidate, current } = provider as { invalidate?: unknown; current?: unknown };
  const onUnauthorized = typeof invalidate === 'function' ? () => (invalidate as () => void).call(provider) : undefined;
  const fresh = typeof current === 'function' ? () => (current as () => string | undefined).call(provider) : undefined;
  // The header of the last token, built once per token rather than once per request.
  let lastToken: string | undefined;
  let lastHeader = '';
  return (dispatch) => {
    const send = (opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, token: string | undefined): boolean => {
      if (token === undefined) return dispatch(opts, handler);
      if (token !== lastToken) {
        lastToken = token;
        lastHeader = `Bearer ${token}`;
      }
      // Per-attempt headers go on the request's own record (see `CallPolicy`); without one, a new one.
      const headers = headersOf(opts);
      let next = opts;
      if (headers === undefined) next = { ...opts, headers: { authorization: lastHeader } };
      else headers.authorization = lastHeader;
      return dispatch(next, onUnauthorized === undefined ? handler : new UnauthorizedHandler(handler, onUnauthorized));
    };
    return (opts, handler) => {
      // A cached token that is still fresh is sent at once, without a promise per request.
      const known = fresh?.();
      if (known !== undefined) return send(opts, handler, known);
      provider().then(
        (token) => send(opts, handler, token),
        (error: unknown) => failFast(handler, new AuthError(error)),
      );
      return true;
    };
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
