import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { AnyContract, HandlerContext, Handlers, IdempotencyStore, OperationDefinition, ProblemDetails } from '@switchboard/core';
import type { AuthGate } from '../auth/gate.js';
import type { AuthOptions, Principal } from '../auth/types.js';

export interface HttpServiceOptions<C extends AnyContract> {
  readonly contract: C;
  readonly handlers: Handlers<C>;
  /** Path prefix the service is mounted under, e.g. `/api`. Default `''`. */
  readonly basePath?: string;
  /** Largest request body, in bytes. Default 1 MiB. */
  readonly bodyLimit?: number;
  /** Time allowed to receive the whole body, from the request's arrival. Default 10 000 ms. */
  readonly bodyTimeoutMs?: number;
  /**
   * Bytes of a request body that nobody reads (404, 405, 415, a route that ignores its body) or that
   * is over `bodyLimit`, read and dropped before the connection is closed, so a client that sends
   * its whole body before reading sees the answer instead of a broken pipe. Default 1 MiB.
   */
  readonly drainLimit?: number;
  /** How long such a body may take to end before the connection is closed. Default 2 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Deepest nesting of arrays and objects in a JSON body; deeper is 400 `SB_JSON_TOO_DEEP`. Default 64. */
  readonly maxJsonDepth?: number;
  /** Most operation requests handled at once; beyond it the service answers 503 + `Retry-After`. Default 256. */
  readonly maxInFlight?: number;
  /** Of the server `listen()` starts: time for a connection to send a request's headers. Default 10 000 ms. */
  readonly headersTimeoutMs?: number;
  /** Of the server `listen()` starts: time to receive a whole request. Default 30 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Of the server `listen()` starts: how long an idle keep-alive connection stays open. Default 5 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** Of the server `listen()` starts: request headers read; the rest are ignored. Default 100. */
  readonly maxHeadersCount?: number;
  /**
   * Of the server `listen()` starts: open connections; a connection past it is answered 503
   * `SB_OVERLOADED` + `Retry-After` and closed. Keep it below the process's file descriptor limit,
   * less what the service needs for its own connections. Default 512.
   */
  readonly maxConnections?: number;
  /** `Retry-After` (seconds) on 503 answers (overload, shutdown). Default 1. */
  readonly retryAfterSeconds?: number;
  /**
   * `Idempotency-Key` support. Default: a `MemoryIdempotencyStore` (one process, bounded); give a
   * SQLite, PostgreSQL or Redis store to keep keys across restarts and share them between
   * instances. `false` ignores the header.
   */
  readonly idempotency?: IdempotencyOptions | false;
  /**
   * Service authentication: every operation, job and extra route (not `/healthz`, `/readyz`, nor a
   * route marked `public`) needs a principal that one of the authenticators establishes (else 401
   * `SB_UNAUTHORIZED` with `WWW-Authenticate`), holding the scopes the operation or route requires
   * (else 403 `SB_FORBIDDEN`). `'none'` says on purpose that the service is open: `listen()` on an
   * address other than loopback then does not warn. Default: none, with that warning.
   */
  readonly auth?: AuthOptions | 'none';
  /**
   * The caller's identity, for `ctx.principal` and the idempotency scope. Default with `auth`: the
   * authenticated principal's `id`. Without `auth`, a resolver typically reads what an auth layer in
   * front of the service already verified.
   */
  readonly principal?: (req: IncomingMessage) => string | undefined;
  /** Extra routes under `{basePath}` (job status monitor, receipts, CloudEvents endpoint...). */
  readonly routes?: readonly HttpRoute[];
  /** Run in order after input validation; the first to return an answer takes over the call. */
  readonly interceptors?: readonly OperationInterceptor[];
  /**
   * Told about every failure the caller sees as a 5xx (handler throws, invalid output, store
   * errors), with the original error. Nothing of it goes on the wire. Default: nothing.
   */
  readonly onError?: (error: unknown, info: { readonly operation: string; readonly status: number }) => void;
}

export interface IdempotencyOptions {
  /** Default: a new `MemoryIdempotencyStore` from `@switchboard/memory`, closed with the service. */
  readonly store?: IdempotencyStore;
  /** How long an answer is replayed. Default 24 h. */
  readonly ttlMs?: number;
  /** How long a running request blocks its key if its process dies. Default 5 min. */
  readonly lockMs?: number;
}

export interface ListenOptions {
  /** Default 0 (any free port). */
  readonly port?: number;
  /** Default `127.0.0.1`; use `0.0.0.0` or `::` to listen on every interface. */
  readonly host?: string;
  /**
   * Serve HTTPS (`node:https`) with these options: `key`, `cert`, and for mutual TLS `ca` +
   * `requestCert: true` (with `rejectUnauthorized: false` an untrusted certificate is answered 401
   * as a problem document instead of a failed handshake; `mutualTlsAuthenticator` refuses it).
   */
  readonly tls?: HttpsServerOptions;
}

export interface Listening {
  readonly url: string;
  readonly port: number;
  /** The `node:http` server, with the service's limits applied. */
  readonly server: Server;
}

export interface CloseOptions {
  /** How long in-flight requests may take to finish before their sockets are closed. Default 10 000 ms. */
  readonly timeoutMs?: number;
}

/** What a handler, interceptor or job runner gets back from running an operation. */
export type OperationOutcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly problem: ProblemDetails; readonly retryAfterMs?: number; readonly error: unknown };

export interface HttpService {
  /** A `node:http` request listener. With `next`, paths the service does not own are passed on. */
  handle(req: IncomingMessage, res: ServerResponse, next?: () => void): void;
  /** Starts a `node:http` server of its own, with the service's server limits. */
  listen(options?: ListenOptions): Promise<Listening>;
  /**
   * Graceful shutdown: `/readyz` answers 503, new calls get 503, in-flight calls finish, idle
   * keep-alive sockets close; after `timeoutMs` handlers are aborted and sockets force-closed.
   */
  close(options?: CloseOptions): Promise<void>;
  /**
   * Runs an operation's handler with an already validated input: output validation and error
   * mapping included, no HTTP. For job runners and interceptors that defer the call.
   */
  invoke(operation: string, input: unknown, context: HandlerContext): Promise<OperationOutcome>;
  readonly contract: AnyContract;
  readonly basePath: string;
  /** The extra routes it serves (adapters that need paths up front read them). */
  readonly routes: readonly HttpRoute[];
  /** False once `close` started. */
  readonly ready: boolean;
  /** Operation requests being handled now. */
  readonly inFlight: number;
  /** Connections open to the server `listen()` started (0 without one). */
  readonly connections: number;
  /** Aborted when `close` gives up waiting; the `ctx.signal` of calls without a deadline. */
  readonly signal: AbortSignal;
  /**
   * The service's authentication (undefined without `auth`, or with `'none'`): its schemes for the
   * API documents, and `guard(req, res, scopes)` for surfaces served elsewhere.
   */
  readonly auth: AuthGate | undefined;
}

// ---------------------------------------------------------------------------------------------
// Extension points.

export interface RouteContext {
  /** The path below `basePath`, without the query string, e.g. `/jobs/abc`. */
  readonly path: string;
  /** The query string without `?`, or `''`. */
  readonly query: string;
  readonly service: HttpService;
  /** The caller's identity from the service's `principal` option, or the authenticated principal's id. */
  readonly principal: string | undefined;
  /** The authenticated principal (with its scopes), when the service has `auth`. */
  readonly authenticated: Principal | undefined;
  /**
   * Reads the body under the service's size limit and time limit. On failure the problem (413,
   * 408) has already been answered and the promise rejects with the `SwitchboardError`. A route
   * that never calls it has its body dropped, within `drainLimit` and `drainTimeoutMs`.
   */
  readBody(): Promise<Buffer>;
  /** The service's `maxJsonDepth`, for routes that parse JSON themselves (`checkJsonDepth`). */
  readonly maxJsonDepth: number;
}

/**
 * An extra route. `path` is relative to `basePath`: exact (`/receipts`) or, ending with `/`, a
 * prefix (`/jobs/` matches `/jobs/abc` and `/jobs/abc/result`). Answer with `sendJson` /
 * `sendProblem`; a thrown `SwitchboardError` becomes its problem, anything else a 500.
 */
export interface HttpRoute {
  readonly methods: readonly string[];
  readonly path: string;
  /** With `auth`: scopes a principal must hold for this route (every one). Default none: authenticated is enough. */
  readonly scopes?: readonly string[];
  /** With `auth`: served without authentication (a public document, a probe). Default false. */
  readonly public?: boolean;
  handle(req: IncomingMessage, res: ServerResponse, context: RouteContext): void | Promise<void>;
}

/** One validated operation call, as seen by interceptors. */
export interface OperationCall {
  readonly operation: string;
  readonly definition: OperationDefinition;
  /** The validated input (the input schema's output). */
  readonly input: unknown;
  readonly req: IncomingMessage;
  /** The context the handler would receive. */
  readonly context: HandlerContext;
  readonly service: HttpService;
}

/** An HTTP answer produced by an interceptor. `body` is sent as JSON. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** Default `application/json` (`application/problem+json` when `body` is a problem you built). */
  readonly contentType?: string;
}

/**
 * Runs after input validation and the idempotency check, before the handler. Return an answer to
 * take the call over (e.g. `Prefer: respond-async` → 202 + job), or `undefined` to let it run
 * inline. Its answer is stored for `Idempotency-Key` replays like any other.
 */
export type OperationInterceptor = (call: OperationCall) => HttpAnswer | undefined | Promise<HttpAnswer | undefined>;
