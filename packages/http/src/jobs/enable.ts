import type { AnyContract, CancelResult, JobRecord, JobStore } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { HttpRoute, HttpService, OperationInterceptor } from '../server/types.js';
import { CallbackNotifier } from '../webhooks/notifier.js';
import { monitorRoute } from './monitor.js';
import type { JobsOptions } from './options.js';
import { positiveOr, resolveOperations } from './options.js';
import { JobRunner } from './runner.js';
import type { JobsRuntime } from './shared.js';
import { submitInterceptor } from './submit.js';

/** Asynchronous request-reply for one service: pass `routes` and `interceptors` to `createHttpService`, then `start` it. */
export interface HttpJobs {
  /** The status monitor routes (`{base}/jobs/...`). */
  readonly routes: readonly HttpRoute[];
  /** The submit interceptor (`Prefer: respond-async` or `mode: 'async'` → 202). */
  readonly interceptors: readonly OperationInterceptor[];
  readonly store: JobStore;
  /** The worker of this process, once started (none with `worker: false`). */
  readonly runner: JobRunner | undefined;
  /** Starts the worker, which runs the handlers through `service.invoke`. */
  start(service: HttpService): this;
  /**
   * Cancels a job as `DELETE {base}/jobs/{id}` does, for code of the service (the dashboard's
   * Cancel): a queued job is canceled at once (its callback, if any, is sent), a running one gets a
   * cancel request and stops at once when it runs in this process. `finished`, `gone` and
   * `missing` change nothing. No owner check: the caller is the service itself.
   */
  cancel(id: string): Promise<CancelResult>;
  /**
   * Graceful shutdown: stops claiming, lets running jobs finish for `timeoutMs` (then aborts them
   * and queues them again), ends long-polls and event streams, stops callback retries. Does not
   * close the store.
   */
  close(options?: { readonly timeoutMs?: number }): Promise<void>;
}

/**
 * Lets the operations of `contract` run as durable jobs in `options.store`, as the protocol's
 * "Asynchronous request-reply" section describes.
 *
 * ```ts
 * const jobs = enableJobs(contract, { store: createSqliteJobStore({ path: 'jobs.db' }) });
 * const service = createHttpService({ contract, handlers, routes: jobs.routes, interceptors: jobs.interceptors });
 * jobs.start(service);
 * ```
 */
export function enableJobs<C extends AnyContract>(contract: C, options: JobsOptions): HttpJobs {
  const path = normalisePath(options.path ?? '/jobs/');
  const runtime: JobsRuntime = {
    store: options.store,
    operations: resolveOperations(contract, options),
    path,
    retryAfterSeconds: Math.ceil(positiveOr('retryAfterSeconds', options.retryAfterSeconds, 1)),
    maxWaitSeconds: positiveOr('maxWaitSeconds', options.maxWaitSeconds, 30),
    sseHeartbeatMs: positiveOr('sseHeartbeatMs', options.sseHeartbeatMs, 15_000),
    notifier: options.callbacks === undefined ? undefined : new CallbackNotifier(options.callbacks, options.onError),
    closing: new AbortController(),
    runner: undefined,
    onError: options.onError,
  };
  const routes = [monitorRoute(runtime)];
  const interceptors = [submitInterceptor(runtime)];
  let closed: Promise<void> | undefined;
  let basePath: string | undefined;
  return {
    routes,
    interceptors,
    store: options.store,
    get runner() {
      return runtime.runner;
    },
    start(service) {
      if (service.contract !== contract) {
        throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'enableJobs was made for another contract than this service' });
      }
      basePath = service.basePath;
      if (options.worker === false || runtime.runner !== undefined || closed !== undefined) return this;
      const worker = options.worker ?? {};
      runtime.runner = new JobRunner({
        ...worker,
        store: options.store,
        service,
        operations: runtime.operations,
        // Only a service that sends callbacks needs the finished job read back.
        ...(runtime.notifier === undefined
          ? {}
          : { onFinished: (job: JobRecord) => runtime.notifier?.notify(options.store, job, `${service.basePath}${path}${job.id}`) }),
        ...(options.onError === undefined ? {} : { onError: options.onError }),
      }).start();
      return this;
    },
    async cancel(id) {
      const result = await options.store.cancel(id);
      if (result.outcome === 'cancel-requested') runtime.runner?.cancel(id);
      if (result.outcome === 'canceled' && basePath !== undefined) {
        runtime.notifier?.notify(options.store, result.job, `${basePath}${path}${id}`);
      }
      return result;
    },
    close(closeOptions = {}) {
      closed ??= (async () => {
        await runtime.runner?.close(closeOptions);
        runtime.closing.abort();
        await runtime.notifier?.close();
      })();
      return closed;
    },
  };
}

function normalisePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.endsWith('/') ? withSlash : `${withSlash}/`;
}
