import type { AnyContract, BackoffOptions, JobStore } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { CallbackOptions } from '../webhooks/notifier.js';

/** Settings of one operation run as a job. */
export interface JobOperationOptions {
  /** Most jobs of this operation running at once, across every worker sharing the store. */
  readonly concurrency?: number;
  /** Bounded queue: beyond this many queued jobs of the operation, submits answer 503. */
  readonly maxQueued?: number;
  /** Time limit of one run, in ms; past it the handler is aborted and the job fails. */
  readonly timeoutMs?: number;
  /** Runs before the job fails for good (lease takeovers and retryable failures count). */
  readonly maxAttempts?: number;
  /** How long a finished job stays readable, in ms. */
  readonly retentionMs?: number;
}

export interface JobsOptions {
  readonly store: JobStore;
  /**
   * Which operations may run as jobs, with their settings. Default: every operation of the
   * contract. `false` keeps one inline only.
   */
  readonly operations?: Readonly<Record<string, JobOperationOptions | boolean>>;
  /** Defaults for every operation. */
  readonly defaults?: JobOperationOptions;
  /** Where the status monitors live below the service's base path. Default `/jobs/`. */
  readonly path?: string;
  /** `Retry-After` (seconds) on 202 and unfinished status answers. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Longest long-poll or `Prefer: wait` honoured, in seconds. Default 30. */
  readonly maxWaitSeconds?: number;
  /** Comment lines sent on idle server-sent event streams, every this many ms. Default 15 000. */
  readonly sseHeartbeatMs?: number;
  /** Completion callbacks (webhooks). Without it, a submit naming a callback is refused. */
  readonly callbacks?: CallbackOptions;
  /** The worker of this process. `false`: this process only accepts jobs. Default: a worker. */
  readonly worker?: WorkerOptions | false;
  /** Told about failures nobody else sees (store errors in the worker, callback failures). */
  readonly onError?: (error: unknown, info: { readonly jobId?: string; readonly operation?: string; readonly phase: string }) => void;
}

export interface WorkerOptions {
  /** Unique per worker. Default: host, pid and a random suffix. */
  readonly workerId?: string;
  /** Jobs this worker runs at once. Default 8. */
  readonly concurrency?: number;
  /** Lease of a claimed job, in ms: another worker takes it over when not renewed in time. Default 30 000. */
  readonly leaseMs?: number;
  /** How often the lease is renewed (and a cancel request noticed). Default `leaseMs / 3`. */
  readonly heartbeatMs?: number;
  /** How often an idle worker looks for due jobs, in ms (a submit in this process wakes it at once). Default 500. */
  readonly pollIntervalMs?: number;
  /** Delay before a retryable failure runs again. Default 1 s doubling to 60 s, full jitter. */
  readonly retry?: BackoffOptions;
  /** How often finished jobs past their retention are purged, in ms. Default 60 000. */
  readonly purgeIntervalMs?: number;
}

export interface ResolvedOperation {
  readonly concurrency: number | undefined;
  readonly maxQueued: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly retentionMs: number | undefined;
}

export const DEFAULT_TIMEOUT_MS = 15 * 60 * 1000;
export const DEFAULT_MAX_QUEUED = 10_000;

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(value > 0 && Number.isFinite(value))) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive number, got ${value}` });
  }
}

/** Per-operation settings of the contract's job-enabled operations. */
export function resolveOperations(contract: AnyContract, options: JobsOptions): Map<string, ResolvedOperation> {
  const resolved = new Map<string, ResolvedOperation>();
  const defaults = options.defaults ?? {};
  for (const name of Object.keys(options.operations ?? {})) {
    if (!Object.hasOwn(contract.operations, name)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Jobs configured for ${name}, which ${contract.name} does not have` });
    }
  }
  for (const [name, definition] of Object.entries(contract.operations)) {
    const own = options.operations?.[name];
    if (own === false || definition.mode === 'sync') continue;
    const settings = { ...defaults, ...(typeof own === 'object' ? own : {}) };
    for (const key of ['concurrency', 'maxQueued', 'timeoutMs', 'maxAttempts', 'retentionMs'] as const) {
      checkPositive(`jobs ${name}.${key}`, settings[key]);
    }
    resolved.set(name, {
      concurrency: settings.concurrency,
      maxQueued: settings.maxQueued ?? DEFAULT_MAX_QUEUED,
      timeoutMs: settings.timeoutMs ?? definition.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxAttempts: settings.maxAttempts ?? 3,
      retentionMs: settings.retentionMs,
    });
  }
  return resolved;
}

export function positiveOr(name: string, value: number | undefined, fallback: number): number {
  checkPositive(name, value);
  return value ?? fallback;
}
