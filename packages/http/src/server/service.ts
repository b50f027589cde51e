import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AnyContract, HandlerContext } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { MemoryIdempotencyStore } from '@switchboard/memory';
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
      principal: options.principal,
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
      if (req.method === 'POST') this.#call(operation, req, res);
      else this.#early(req, res, ALLOW_POST);
      return;
    }
    if (path === this.#healthPath || path === this.#readyPath) {
      this.#health(path === this.#healthPath, req, res);
      return;
    }
    if (this.#routes.length > 0 && this.#route(path, query === -1 ? '' : url.slice(query + 1), req, res)) return;
    // The service owns all of `{base}/ops/`, even when mounted as middleware.
    if (path.startsWith(this.#opsPrefix)) this.#early(req, res, this.#runtime.problems.unknownOperation);
    else if (next !== undefined) next();
    else this.#early(req, res, this.#runtime.problems.notFound);
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

  /** True when an extra route owns the path (it answered, or a 405 was sent). */
  #route(path: string, query: string, req: IncomingMessage, res: ServerResponse): boolean {
    let allow: string[] | undefined;
    for (const mounted of this.#routes) {
      if (mounted.prefix ? !path.startsWith(mounted.path) : path !== mounted.path) continue;
      if (mounted.route.methods.includes(req.method ?? '')) {
        this.#runRoute(mounted.route, path, query, req, res);
        return true;
      }
      allow = [...(allow ?? []), ...mounted.route.methods];
    }
    if (allow === undefined) return false;
    const allowed = [...new Set(allow)].join(', ');
    sendProblem(res, new SwitchboardError('SB_METHOD_NOT_ALLOWED', { detail: `Allowed: ${allowed}` }), { allow: allowed });
    boundUnreadBody(req, res, this.#runtime.drainLimit, this.#runtime.drainTimeoutMs);
    return true;
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
    const server = createServer({ connectionsCheckingInterval: checkingInterval(this.#limits) }, this.handle);
    this.#connections = applyServerLimits(server, this.#limits);
    server.on('clientError', answerClientError);
    this.#server = server;
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.removeListener('error', reject);
        const port = (server.address() as AddressInfo).port;
        const hostname = host.includes(':') ? `[${host}]` : host;
        resolve({ url: `http://${hostname}:${port}`, port, server });
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
