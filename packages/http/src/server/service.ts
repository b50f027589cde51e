import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AnyContract, HandlerContext } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { MemoryIdempotencyStore } from '../idempotency/memory.js';
import { readBody } from './body.js';
import { answerClientError } from './client-error.js';
import { isJsonContentType } from './content-type.js';
import type { CompiledOperation } from './invoke.js';
import { compileOperation, invokeOperation } from './invoke.js';
import { OperationRequest } from './operation-request.js';
import { sendProblem, staticProblem, writeResponse, writeStatic } from './respond.js';
import type { IdempotencyRuntime, ServiceRuntime } from './runtime.js';
import { buildStaticProblems, report, shutdownReason } from './runtime.js';
import type { CloseOptions, HttpRoute, HttpService, HttpServiceOptions, ListenOptions, OperationOutcome, RouteContext } from './types.js';

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const DEFAULT_BODY_TIMEOUT_MS = 10_000;
const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_IDEMPOTENCY_LOCK_MS = 5 * 60 * 1000;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

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
  if (!(value > 0)) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive number, got ${value}` });
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
  #server: Server | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: HttpServiceOptions<AnyContract>) {
    this.contract = options.contract;
    this.basePath = normaliseBase(options.basePath);
    this.#opsPrefix = `${this.basePath}/ops/`;
    this.#healthPath = `${this.basePath}/healthz`;
    this.#readyPath = `${this.basePath}/readyz`;
    const handlers = options.handlers as Readonly<Record<string, unknown>>;
    for (const [name, definition] of Object.entries(options.contract.operations)) {
      const compiled = compileOperation(options.contract.name, name, definition, handlers[name]);
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
      maxInFlight: positive('maxInFlight', options.maxInFlight, Number.POSITIVE_INFINITY),
      idempotency,
      principal: options.principal,
      interceptors: options.interceptors ?? [],
      onError: options.onError,
      problems: buildStaticProblems(bodyLimit, retryAfterSeconds),
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
      else writeStatic(res, ALLOW_POST);
      return;
    }
    if (path === this.#healthPath || path === this.#readyPath) {
      this.#health(path === this.#healthPath, req, res);
      return;
    }
    if (this.#routes.length > 0 && this.#route(path, query === -1 ? '' : url.slice(query + 1), req, res)) return;
    // The service owns all of `{base}/ops/`, even when mounted as middleware.
    if (path.startsWith(this.#opsPrefix)) writeStatic(res, this.#runtime.problems.unknownOperation);
    else if (next !== undefined) next();
    else writeStatic(res, this.#runtime.problems.notFound);
  }

  #call(operation: CompiledOperation, req: IncomingMessage, res: ServerResponse): void {
    const runtime = this.#runtime;
    const problems = runtime.problems;
    if (runtime.closing) {
      writeStatic(res, problems.shuttingDown);
      return;
    }
    if (runtime.inFlight >= runtime.maxInFlight) {
      writeStatic(res, problems.overloaded);
      return;
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      writeStatic(res, problems.unsupportedMediaType);
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > runtime.bodyLimit) {
      writeStatic(res, problems.bodyTooLarge);
      return;
    }
    if (req.readableEnded) {
      writeStatic(res, CONSUMED);
      return;
    }
    runtime.inFlight++;
    new OperationRequest(runtime, operation, req, res).start();
  }

  #health(liveness: boolean, req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      writeStatic(res, ALLOW_GET);
      return;
    }
    const ok = liveness || !this.#runtime.closing;
    writeResponse(res, ok ? 200 : 503, 'application/json', liveness ? ALIVE : ok ? READY : NOT_READY, { 'cache-control': 'no-store' });
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
    return true;
  }

  #runRoute(route: HttpRoute, path: string, query: string, req: IncomingMessage, res: ServerResponse): void {
    const runtime = this.#runtime;
    const context: RouteContext = {
      path: path.slice(this.basePath.length),
      query,
      service: this,
      get principal() {
        return runtime.principal?.(req);
      },
      readBody: () =>
        readBody(req, runtime.bodyLimit, runtime.bodyTimeoutMs).catch((error: unknown) => {
          const closeAfter = error instanceof SwitchboardError && error.code !== 'SB_CONFIG_INVALID';
          if (error instanceof SwitchboardError) sendProblem(res, error, closeAfter ? { connection: 'close' } : undefined);
          throw error;
        }),
    };
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

  listen(options: ListenOptions = {}): Promise<{ readonly url: string; readonly port: number }> {
    if (this.#server !== undefined)
      return Promise.reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'The service is already listening' }));
    if (this.#runtime.closing) return Promise.reject(new SwitchboardError('SB_CLOSED'));
    const server = createServer(this.handle);
    server.on('clientError', answerClientError);
    this.#server = server;
    const host = options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.removeListener('error', reject);
        const port = (server.address() as AddressInfo).port;
        const hostname = host.includes(':') ? `[${host}]` : host;
        resolve({ url: `http://${hostname}:${port}`, port });
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
