import type { IncomingMessage } from 'node:http';
import type { JobRecord, JobStore } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { CallbackNotifier } from '../webhooks/notifier.js';
import type { ResolvedOperation } from './options.js';
import type { JobRunner } from './runner.js';

/** What the submit interceptor, the monitor routes and the worker of one `enableJobs` share. */
export interface JobsRuntime {
  readonly store: JobStore;
  readonly operations: ReadonlyMap<string, ResolvedOperation>;
  /** `/jobs/`, relative to the service's base path. */
  readonly path: string;
  readonly retryAfterSeconds: number;
  readonly maxWaitSeconds: number;
  readonly sseHeartbeatMs: number;
  readonly notifier: CallbackNotifier | undefined;
  /** Aborted by `close()`: long-polls answer at once, event streams end. */
  readonly closing: AbortController;
  runner: JobRunner | undefined;
  readonly onError:
    | ((error: unknown, info: { readonly jobId?: string; readonly operation?: string; readonly phase: string }) => void)
    | undefined;
}

/**
 * The path the client used to reach `{base}`: when the service is mounted as middleware (Express
 * `app.use('/api', ...)`) the mount point is not part of `req.url`, but it is of `originalUrl`.
 */
function mountPrefix(req: IncomingMessage): string {
  const original = (req as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  const url = req.url ?? '';
  if (typeof original !== 'string' || original === url) return '';
  const strip = (value: string) => (value.includes('?') ? value.slice(0, value.indexOf('?')) : value);
  const full = strip(original);
  const own = strip(url);
  return full.endsWith(own) ? full.slice(0, full.length - own.length) : '';
}

/** Path of a job's status monitor as the caller sees it, e.g. `/api/jobs/abc`. */
export function monitorPath(runtime: JobsRuntime, req: IncomingMessage, basePath: string, id: string): string {
  return `${mountPrefix(req)}${basePath}${runtime.path}${id}`;
}

/**
 * A store failure as the caller sees it: 503 with `Retry-After` and a fixed detail (the store's own
 * message may name hosts and credentials). Errors the jobs layer raised itself pass unchanged.
 */
export function unavailable(runtime: JobsRuntime, error: unknown): SwitchboardError {
  const retryAfterMs = runtime.retryAfterSeconds * 1000;
  return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: 'The job store could not be reached', cause: error, retryAfterMs });
}

export function report(
  runtime: JobsRuntime,
  error: unknown,
  info: { readonly jobId?: string; readonly operation?: string; readonly phase: string },
): void {
  if (runtime.onError === undefined) return;
  try {
    runtime.onError(error, info);
  } catch {
    // A failing reporter must not break an answer.
  }
}

/** Starts the completion notice of a job that just finished outside a worker (a cancel). */
export function announce(runtime: JobsRuntime, job: JobRecord, req: IncomingMessage, basePath: string): void {
  runtime.notifier?.notify(runtime.store, job, monitorPath(runtime, req, basePath, job.id));
}
