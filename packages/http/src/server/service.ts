import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AnyContract, HandlerContext } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { MemoryIdempotencyStore } from '@switchboard/memory';
import { AuthGate, sendRefusal } from '../auth/gate.js';
import type { Principal, Verification } from '../auth/types.js';
import { principalOf, setPrincipal } from '../auth/types.js';
import { readBody } from './body.js';
import { answerClientError } from './client-error.js';
import { isJsonContentType } from './content-type.js';
import { boundUnreadBody, DEFAULT_DRAIN_LIMIT, DEFAULT_DRAIN_TIMEOUT_MS } from './drain.js';
import type { CompiledOperation } from './invoke.js';
import { compileOperation, invokeOperation } from './invoke.js';
import { DEFAULT_MAX_JSON_DEPTH } from './json.js';
import type { ServerLimits } from './limits.js';
import {
  applyServerLimits,
  checkingInterval,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_HEADERS_COUNT,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './limits.js';
import { OperationRequest } from './operation-request.js';
import type { StaticProblem } from './respond.js';
import { sendProblem, staticProblem, writeResponse, writeStatic } from './respond.js';
import type { IdempotencyRuntime, ServiceRuntime } from './runtime.js';
import { buildStaticProblems, report, shutdownReason } from './runtime.js';
import type {
  CloseOptions,
  HttpRoute,
  HttpService,
  HttpServiceOptions,
  Listening,
  ListenOptions,
  OperationOutcome,
  RouteContext,
} from './types.js';

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_BODY_TIMEOUT_MS = 10_000;
const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_IDEMPOTENCY_LOCK_MS = 5 * 60 * 1000;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_IN_FLIGHT = 256;

const ALLOW_POST = staticProblem('SB_METHOD_NOT_ALLOWED', 'Operations are called with POST', { allow: 'POST' });
const ALLOW_GET = staticProblem('SB_METHOD_NOT_ALLOWED', undefined, { allow: 'GET, HEAD' });
const CONSUMED = staticProblem('SB_CONFIG_INVALID', 'The request body was already consumed by another middleware');
const READY = '{"status":"ready"}';
const NOT_READY = '{"status":"draining"}';
const ALIVE = '{"status":"ok"}';
const NO_SCOPES: readonly string[] = [];
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);

interface MountedRoute {
  readonly route: HttpRoute;
  readonly path: string;
  readonly prefix: boolean;
}

/** Serves a contract's operations over HTTP, as `docs/protocol.md` describes. */
export function createHttpService<C extends AnyContract>(options: HttpServiceOptions<C>): HttpService {
  return new SwitchboardHttpService(options as unknown as HttpServiceOptions<AnyContract>);
}

function normaliseBase(base: string | undefined): string {
  if (base === undefined || base === '' || base === '/') return '';
  const withSlash = base.startsWith('/') ? base : `/${base}`;
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || Number.isNaN(value))
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive number, got ${value}` });
  return value;
}

class SwitchboardHttpService implements HttpService {
  readonly contract: AnyContract;
  readonly basePath: string;
  readonly routes: readonly HttpRoute[];
  readonly handle: (req: IncomingMessage, res: ServerResponse, next?: () => void) => void;
  readonly auth: AuthGate | undefined;
  readonly #authMode: 'on' | 'none' | 'unset';
  /** Scopes each operation requires (contract, then `auth.scopes`). */
  readonly #scopes = new Map<string, readonly string[]>();
  readonly #runtime: ServiceRuntime;
  /** Full path (`{base}/ops/{name}`) to operation. */
  readonly #byPath = new Map<string, CompiledOperation>();
  readonly #byName = new Map<string, CompiledOperation>();
  readonly #opsPrefix: string;
  readonly #healthPath: string;
  readonly #readyPath: string;
  readonly #routes: readonly MountedRoute[];
  readonly #limits: ServerLimits;
  #server: Server | undefined;
  #connections: () => number = () => 0;
  #closing: Promise<void> | undefined;

  constructor(options: HttpServiceOptions<AnyContract>) {
    this.contract = options.contract;
    this.basePath = normaliseBase(options.basePath);
    this.#opsPrefix = `${this.basePath}/ops/`;
    this.#healthPath = `${this.basePath}/healthz`;
    this.#readyPath = `${this.basePath}/readyz`;
    const handlers = options.handlers as Readonly<Record<string, unknown>>;
    for (const [name, definition] of Object.entries(options.contract.operations)) {
      const compiled = compileOperation(options.contract.name, name, definition, handlers[name], this.basePath);
      this.#byPath.set(this.#opsPrefix + name, compiled);
      this.#byName.set(name, compiled);
    }
    if (options.auth !== undefined && options.auth !== 'none' && (typeof options.auth !== 'object' || options.auth === null)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: "auth must be { authenticators } or 'none'" });
    }
    this.auth = options.auth === undefined || options.auth === 'none' ? undefined : new AuthGate(options.auth, options.contract.name);
    this.#authMode = options.auth === undefined ? 'unset' : options.auth === 'none' ? 'none' : 'on';
    if (this.auth !== undefined) {
      const overrides = (options.auth as Exclude<typeof options.auth, 'none' | undefined>).scopes ?? {};
      for (const name of Object.keys(overrides)) {
        if (!this.#byName.has(name)) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `auth.scopes names no operation ${name}` });
      }
      for (const [name, definition] of Object.entries(options.contract.operations)) {
        const scopes = overrides[name] ?? definition.scopes ?? NO_SCOPES;
        if (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string' || scope === '')) {
          throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `The scopes of operation ${name} must be non-empty strings` });
        }
        this.#scopes.set(name, scopes);
        this.auth.operationScopes.set(name, scopes);
      }
    }
    this.routes = options.routes ?? [];
    this.#routes = this.routes.map((route) => {
      const path = `${this.basePath}${route.path.startsWith('/') ? route.path : `/${route.path}`}`;
      return { route, path, prefix: path.endsWith('/') };
    });
    const bodyLimit = positive('bodyLimit', options.bodyLimit, DEFAULT_BODY_LIMIT);
    const retryAfterSeconds = positive('retryAfterSeconds', options.retryAfterSeconds, 1);
    const maxJsonDepth = positive('maxJsonDepth', options.maxJsonDepth, DEFAULT_MAX_JSON_DEPTH);
    this.#limits = {
      headersTimeoutMs: positive('headersTimeoutMs', options.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS),
      requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS),
      keepAliveTimeoutMs: positive('keepAliveTimeoutMs', options.keepAliveTimeoutMs, DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
      maxHeadersCount: positive('maxHeadersCount', options.maxHeadersCount, DEFAULT_MAX_HEADERS_COUNT),
      maxConnections: positive('maxConnections', options.maxConnections, DEFAULT_MAX_CONNECTIONS),
      retryAfterSeconds,
    };
    if (this.#limits.headersTimeoutMs > this.#limits.requestTimeoutMs) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'headersTimeoutMs must not be longer than requestTimeoutMs' });
    }
    let idempotency: IdempotencyRuntime | undefined;
    if (options.idempotency !== false) {
      const settings = options.idempotency ?? {};
      idempotency = {
        store: settings.store ?? new MemoryIdempotencyStore(),
        ttlMs: positive('idempotency.ttlMs', settings.ttlMs, DEFAULT_IDEMPOTENCY_TTL_MS),
        lockMs: positive('idempotency.lockMs', settings.lockMs, DEFAULT_IDEMPOTENCY_LOCK_MS),
        owned: settings.store === undefined,
      };
    }
    this.#runtime = {
      service: this,
      contractName: options.contract.name,
      bodyLimit,
      bodyTimeoutMs: positive('bodyTimeoutMs', options.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS),
      drainLimit: positive('drainLimit', options.drainLimit, DEFAULT_DRAIN_LIMIT),
      drainTimeoutMs: positive('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS),
      maxJsonDepth,
      maxInFlight: positive('maxInFlight', options.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
      idempotency,
      principal: options.principal ?? (this.auth === undefined ? undefined : principalId),
      interceptors: options.interceptors ?? [],
      onError: options.onError,
      problems: buildStaticProblems(bodyLimit, retryAfterSeconds, maxJsonDepth),
      shutdown: new AbortController(),
      deadlined: new Set(),
      closing: false,
      inFlight: 0,
      onDrained: undefined,
    };
    this.handle = this.#handle.bind(this);
  }

  get ready(): boolean {
    return !this.#runtime.closing;
  }

  get inFlight(): number {
    return this.#runtime.inFlight;
  }

  get connections(): number {
    return this.#connections();
  }

  get signal(): AbortSignal {
    return this.#runtime.shutdown.signal;
  }

  #handle(req: IncomingMessage, res: ServerResponse, next?: () => void): void {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const operation = this.#byPath.get(path);
    if (operation !== undefined) {
      if (this.auth === undefined) this.#operation(operation, req, res);
      else this.#guard(req, res, this.#scopes.get(operation.name) ?? NO_SCOPES, () => this.#operation(operation, req, res));
      return;
    }
    if (path === this.#healthPath || path === this.#readyPath) {
      this.#health(path === this.#healthPath, req, res);
      return;
    }
    if (this.#routes.length > 0) {
      const mounted = this.#matchRoute(path, req.method);
      if (mounted !== undefined) {
        const queryString = query === -1 ? '' : url.slice(query + 1);
        if (this.auth === undefined || mounted.route?.route.public === true) this.#route(path, queryString, req, res, mounted);
        else this.#guard(req, res, mounted.route?.route.scopes ?? NO_SCOPES, () => this.#route(path, queryString, req, res, mounted));
        return;
      }
    }
    // The service owns all of `{base}/ops/`, even when mounted as middleware.
    if (path.startsWith(this.#opsPrefix)) {
      // With auth, an unauthenticated caller learns nothing of which operations exist.
      if (this.auth === undefined) this.#early(req, res, this.#runtime.problems.unknownOperation);
      else this.#guard(req, res, NO_SCOPES, () => this.#early(req, res, this.#runtime.problems.unknownOperation));
    } else if (next !== undefined) next();
    else this.#early(req, res, this.#runtime.problems.notFound);
  }

  #operation(operation: CompiledOperation, req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'POST') this.#call(operation, req, res);
    else this.#early(req, res, ALLOW_POST);
  }

  /** Authenticates, checks `scopes`, and runs `proceed` or answers the refusal (synchronously when the authenticators are). */
  #guard(req: IncomingMessage, res: ServerResponse, scopes: readonly string[], proceed: () => void): void {
    const gate = this.auth as AuthGate;
    const verification = gate.authenticate(req);
    if (verification instanceof Promise) {
      verification.then(
        (settled) => this.#admit(gate, req, res, scopes, settled, proceed),
        (error: unknown) => {
          report(this.#runtime, error, 'auth', 500);
          this.#early(req, res, this.#runtime.problems.internal);
        },
      );
    } else {
      this.#admit(gate, req, res, scopes, verification, proceed);
    }
  }

  #admit(
    gate: AuthGate,
    req: IncomingMessage,
    res: ServerResponse,
    scopes: readonly string[],
    verification: Verification,
    proceed: () => void,
  ): void {
    const refused = gate.refusal(verification, scopes);
    if (refused !== undefined) {
      sendRefusal(res, refused);
      boundUnreadBody(req, res, this.#runtime.drainLimit, this.#runtime.drainTimeoutMs);
      return;
    }
    setPrincipal(req, verification as Principal);
    proceed();
  }

  /** Answers without reading the body, then drops what is left of it within the drain bounds. */
  #early(req: IncomingMessage, res: ServerResponse, problem: StaticProblem): void {
    writeStatic(res, problem);
    boundUnreadBody(req, res, this.#runtime.drainLimit, this.#runtime.drainTimeoutMs);
  }

  #call(operation: CompiledOperation, req: IncomingMessage, res: ServerResponse): void {
    const runtime = this.#runtime;
    const problems = runtime.problems;
    if (runtime.closing) {
      this.#early(req, res, problems.shuttingDown);
      return;
    }
    if (runtime.inFlight >= runtime.maxInFlight) {
      this.#early(req, res, problems.overloaded);
      return;
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      this.#early(req, res, problems.unsupportedMediaType);
      return;
    }
    const declared = req.headers['content-length'];
    const over = declared !== undefined && Number(declared) > runtime.bodyLimit;
    if (over && Number(declared) > runtime.bodyLimit + runtime.drainLimit) {
      // Too much to drain: answer at once and close (the client may see a broken pipe).
      writeStatic(res, problems.bodyTooLarge);
      return;
    }
    if (req.readableEnded) {
      writeStatic(res, CONSUMED);
      return;
    }
    runtime.inFlight++;
    new OperationRequest(runtime, operation, req, res).start(over);
  }

  #health(liveness: boolean, req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.#early(req, res, ALLOW_GET);
      return;
    }
    const ok = liveness || !this.#runtime.closing;
    writeResponse(res, ok ? 200 : 503, 'application/json', liveness ? ALIVE : ok ? READY : NOT_READY, { 'cache-control': 'no-store' });
    boundUnreadBody(req, res, this.#runtime.drainLimit, this.#runtime.drainTimeoutMs);
  }

  /** The extra route for the path and method, or the methods the path takes (a 405); undefined when no route owns the path. */
  #matchRoute(path: string, method: string | undefined): { readonly route?: MountedRoute; readonly allow?: readonly string[] } | undefined {
    let allow: string[] | undefined;
    for (const mounted of this.#routes) {
      if (mounted.prefix ? !path.startsWith(mounted.path) : path !== mounted.path) continue;
      if (mounted.route.methods.includes(method ?? '')) return { route: mounted };
      allow = [...(allow ?? []), ...mounted.route.methods];
    }
    return allow === undefined ? undefined : { allow };
  }

  /** Runs the matched extra route, or answers the 405. */
  #route(
    path: string,
    query: string,
    req: IncomingMessage,
    res: ServerResponse,
    matched: { readonly route?: MountedRoute; readonly allow?: readonly string[] },
  ): void {
    if (matched.route !== undefined) {
      this.#runRoute(matched.route.route, path, query, req, res);
      return;
    }
    const allowed = [...new Set(matched.allow)].join(', ');
    sendProblem(res, new SwitchboardError('SB_METHOD_NOT_ALLOWED', { detail: `Allowed: ${allowed}` }), { allow: allowed });
    boundUnreadBody(req, res, this.#runtime.drainLimit, this.#runtime.drainTimeoutMs);
  }

  #runRoute(route: HttpRoute, path: string, query: string, req: IncomingMessage, res: ServerResponse): void {
    const runtime = this.#runtime;
    let reading = false;
    const context: RouteContext = {
      path: path.slice(this.basePath.length),
      query,
      service: this,
      maxJsonDepth: runtime.maxJsonDepth,
      get principal() {
        return runtime.principal?.(req);
      },
      get authenticated() {
        return principalOf(req);
      },
      readBody: () => {
        reading = true;
        return readBody(req, runtime.bodyLimit, runtime.bodyTimeoutMs, runtime.drainLimit).catch((error: unknown) => {
          const closeAfter = error instanceof SwitchboardError && error.code !== 'SB_CONFIG_INVALID';
          if (error instanceof SwitchboardError) sendProblem(res, error, closeAfter ? { connection: 'close' } : undefined);
          throw error;
        });
      },
    };
    // A route that answers without reading its body: drop the body within the drain bounds.
    res.once('finish', () => {
      if (!reading) boundUnreadBody(req, res, runtime.drainLimit, runtime.drainTimeoutMs);
    });
    const fail = (error: unknown): void => {
      if (error instanceof SwitchboardError) {
        sendProblem(res, error);
        return;
      }
      report(runtime, error, route.path, 500);
      writeStatic(res, runtime.problems.internal);
    };
    try {
      const result = route.handle(req, res, context);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  invoke(operation: string, input: unknown, context: HandlerContext): Promise<OperationOutcome> {
    const compiled = this.#byName.get(operation);
    if (compiled === undefined) {
      const error = new SwitchboardError('SB_UNKNOWN_OPERATION', { detail: `No operation ${operation} in ${this.contract.name}` });
      return Promise.resolve({ ok: false, problem: error.toProblem(), error });
    }
    return invokeOperation(compiled, input, context);
  }

  listen(options: ListenOptions = {}): Promise<Listening> {
    if (this.#server !== undefined)
      return Promise.reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'The service is already listening' }));
    if (this.#runtime.closing) return Promise.reject(new SwitchboardError('SB_CLOSED'));
    const host = options.host ?? '127.0.0.1';
    if (this.#authMode === 'unset' && !LOOPBACK.has(host)) {
      process.emitWarning(
        `${this.contract.name} listens on ${host} with no authentication: anyone who can reach it may call every operation. ` +
          "Configure createHttpService({ auth }) or say auth: 'none' on purpose.",
        { code: 'SWITCHBOARD_NO_AUTH' },
      );
    }
    const settings = { connectionsCheckingInterval: checkingInterval(this.#limits) };
    const server: Server =
      options.tls === undefined
        ? createServer(settings, this.handle)
        : (createSecureServer({ ...options.tls, ...settings }, this.handle) as unknown as Server);
    this.#connections = applyServerLimits(server, this.#limits);
    server.on('clientError', answerClientError);
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.removeListener('error', reject);
        const port = (server.address() as AddressInfo).port;
        const hostname = host.includes(':') ? `[${host}]` : host;
        resolve({ url: `${options.tls === undefined ? 'http' : 'https'}://${hostname}:${port}`, port, server });
      });
    });
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.#closing;
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    const runtime = this.#runtime;
    runtime.closing = true;
    const server = this.#server;
    const closed = server === undefined ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    server?.closeIdleConnections();
    if (runtime.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      const drained = await new Promise<boolean>((resolve) => {
        runtime.onDrained = () => resolve(true);
        timer = setTimeout(resolve, timeoutMs, false);
      });
      clearTimeout(timer);
      runtime.onDrained = undefined;
      if (!drained) {
        const reason = shutdownReason();
        runtime.shutdown.abort(reason);
        for (const controller of runtime.deadlined) controller.abort(reason);
        runtime.deadlined.clear();
        // Let handlers that honour their signal answer before the sockets go.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    server?.closeAllConnections();
    await closed;
    if (runtime.idempotency?.owned === true) await runtime.idempotency.store.close?.();
  }
}

function principalId(req: IncomingMessage): string | undefined {
  return principalOf(req)?.id;
}
