import type { IncomingMessage, ServerResponse } from 'node:http';
import { SwitchboardError } from '@switchboard/core';
import { PROBLEM_TYPE, writeResponse } from '../server/respond.js';
import type { Authenticator, AuthFailure, AuthOptions, Principal, Verification } from './types.js';
import { isAuthFailure, setPrincipal } from './types.js';

/** What the gate answers a request it refuses. */
export interface AuthRefusal {
  readonly status: 401 | 403 | 503;
  /** The problem document, serialised. */
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

const NO_SCOPES: readonly string[] = [];

/**
 * Authentication and scope checks for one service (or any HTTP surface: a dashboard served on its
 * own server uses `guard`). Authenticators are tried in order (see `AuthOptions`).
 */
export class AuthGate {
  readonly realm: string;
  readonly authenticators: readonly Authenticator[];
  /** The schemes of the authenticators, for the API documents. */
  readonly schemes: readonly string[];
  /** The scopes each operation requires (its contract's, or the service's `auth.scopes`), for the API documents. */
  readonly operationScopes = new Map<string, readonly string[]>();
  readonly #unavailable: AuthRefusal;

  constructor(options: AuthOptions, realm: string) {
    if (!Array.isArray(options.authenticators) || options.authenticators.length === 0) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: "auth.authenticators must list at least one authenticator (or pass auth: 'none')",
      });
    }
    this.realm = options.realm ?? realm;
    this.authenticators = options.authenticators;
    this.schemes = [...new Set(options.authenticators.map((a) => a.scheme))];
    this.#unavailable = {
      status: 503,
      body: JSON.stringify(new SwitchboardError('SB_UNAVAILABLE', { detail: 'The credentials cannot be checked right now' }).toProblem()),
      headers: { 'retry-after': '1', 'cache-control': 'no-store' },
    };
  }

  /** Runs the authenticators in order; synchronous as long as they are. */
  authenticate(req: IncomingMessage): Verification | Promise<Verification> {
    return this.#from(0, req, undefined);
  }

  #from(index: number, req: IncomingMessage, missing: AuthFailure | undefined): Verification | Promise<Verification> {
    const authenticators = this.authenticators;
    for (let i = index; i < authenticators.length; i++) {
      let verdict: Verification | Promise<Verification>;
      try {
        verdict = (authenticators[i] as Authenticator).verify(req);
      } catch {
        verdict = { failure: 'unavailable', detail: 'The authenticator failed' };
      }
      if (verdict instanceof Promise) {
        return verdict.then(
          (settled) => (isAuthFailure(settled) && settled.failure === 'missing' ? this.#from(i + 1, req, missing ?? settled) : settled),
          (): Verification => ({ failure: 'unavailable', detail: 'The authenticator failed' }),
        );
      }
      if (!isAuthFailure(verdict) || verdict.failure !== 'missing') return verdict;
      missing ??= verdict;
    }
    return missing ?? { failure: 'missing', detail: 'No credentials' };
  }

  /** The answer for a request with this verification that needs `required` scopes; undefined to let it in. */
  refusal(verification: Verification, required: readonly string[] = NO_SCOPES): AuthRefusal | undefined {
    if (isAuthFailure(verification)) {
      if (verification.failure === 'unavailable') return this.#unavailable;
      const detail =
        verification.failure === 'missing' ? `Send credentials: ${this.schemes.map(describe).join(' or ')}` : verification.detail;
      const challenges = this.authenticators.map((a) =>
        a.challenge(this.realm, verification.failure === 'invalid' ? verification : undefined),
      );
      return {
        status: 401,
        body: JSON.stringify(new SwitchboardError('SB_UNAUTHORIZED', { detail }).toProblem()),
        headers: { 'www-authenticate': [...new Set(challenges)].join(', '), 'cache-control': 'no-store' },
      };
    }
    if (required.length === 0) return undefined;
    const held = verification.scopes;
    const lacking = required.filter((scope) => !held.includes(scope));
    if (lacking.length === 0) return undefined;
    const authenticator = this.authenticators.find((a) => a.scheme === verification.scheme) ?? this.authenticators[0];
    return {
      status: 403,
      body: JSON.stringify(
        new SwitchboardError('SB_FORBIDDEN', {
          detail: `This request needs the scope${lacking.length > 1 ? 's' : ''} ${lacking.join(', ')}`,
        }).toProblem(),
      ),
      headers: {
        'www-authenticate': (authenticator as Authenticator).challenge(this.realm, undefined, lacking),
        'cache-control': 'no-store',
      },
    };
  }

  /**
   * Authenticates `req` and checks `scopes`; on refusal answers it (401, 403 or 503 problem) and
   * resolves `undefined`. The hook for HTTP surfaces outside `createHttpService` (a dashboard on a
   * server of its own): `const principal = await gate.guard(req, res); if (!principal) return;`.
   */
  async guard(req: IncomingMessage, res: ServerResponse, scopes: readonly string[] = NO_SCOPES): Promise<Principal | undefined> {
    const verification = await this.authenticate(req);
    const refused = this.refusal(verification, scopes);
    if (refused !== undefined) {
      sendRefusal(res, refused);
      return undefined;
    }
    const principal = verification as Principal;
    setPrincipal(req, principal);
    return principal;
  }
}

export function sendRefusal(res: ServerResponse, refusal: AuthRefusal): void {
  writeResponse(res, refusal.status, PROBLEM_TYPE, refusal.body, refusal.headers);
}

function describe(scheme: string): string {
  return scheme === 'bearer' ? 'a bearer token' : scheme === 'mutualTLS' ? 'a client certificate' : scheme;
}

/** An `AuthGate` for `options`, for surfaces outside `createHttpService` (see `AuthGate.guard`). */
export function createAuthGate(options: AuthOptions & { readonly realm: string }): AuthGate {
  return new AuthGate(options, options.realm);
}
