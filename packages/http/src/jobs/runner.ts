import { hostname } from 'node:os';
import type { BackoffOptions, JobClaim, JobRecord, JobStore, ProblemDetails, Progress, SettleOutcome } from '@switchboard/core';
import { backoffDelay, channels, type JobRunMessage, SwitchboardError, traceAsync, tracing } from '@switchboard/core';
import { canceledProblem, newSecretId } from '@switchboard/core/kit';
import type { HttpService, OperationOutcome } from '../server/types.js';
import { JobHandlerContext } from './context.js';
import type { ResolvedOperation } from './options.js';

export interface JobRunnerOptions {
  readonly store: JobStore;
  /** Runs the handlers (`service.invoke`). */
  readonly service: HttpService;
  /** The operations this worker runs, with their settings. */
  readonly operations: ReadonlyMap<string, ResolvedOperation>;
  readonly workerId?: string;
  readonly concurrency?: number;
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
  readonly pollIntervalMs?: number;
  readonly retry?: BackoffOptions;
  readonly purgeIntervalMs?: number;
  /** Called with every job that reached a final state in this worker. */
  readonly onFinished?: (job: JobRecord) => void;
  readonly onError?: (error: unknown, info: { readonly jobId?: string; readonly operation?: string; readonly phase: string }) => void;
}

type StopReason = 'cancel' | 'lost' | 'timeout' | 'shutdown';

/** One job this worker runs. */
interface Running {
  readonly claim: JobClaim;
  readonly controller: AbortController;
  reason: StopReason | undefined;
  /** Resolves when the run was stopped (the handler may ignore its signal; the job settles anyway). */
  readonly stopped: Promise<void>;
  stop: (reason: StopReason) => void;
  progress: Progress | undefined;
  writingProgress: boolean;
  /** When the handler must have finished (`performance.now()` time). */
  readonly deadline: number;
  /** When the lease was last renewed (`performance.now()` time). */
  renewedAt: number;
  /** The `switchboard:job:run` context, when someone listens. */
  trace?: JobRunMessage;
}

const SETTLE_ATTEMPTS = 5;

const NOT_SERIALIZABLE: ProblemDetails = new SwitchboardError('SB_RESULT_NOT_SERIALIZABLE', {
  detail: 'The result cannot be stored as JSON',
}).toProblem();

/** Whether a job store can hold `value` (they all keep results as JSON). */
function serializable(value: unknown): boolean {
  try {
    JSON.stringify(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A worker inside the service: claims due jobs with a lease, renews it while the handler runs,
 * runs the same handler as inline calls (`service.invoke`, `ctx.via = 'job'`), and settles the job.
 * The handler's signal aborts on cancel, timeout, lost lease and forced shutdown.
 */
export class JobRunner {
  readonly workerId: string;
  readonly #store: JobStore;
  readonly #service: HttpService;
  readonly #operations: ReadonlyMap<string, ResolvedOperation>;
  readonly #names: readonly string[];
  readonly #perOperation: Readonly<Record<string, number>>;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #heartbeatMs: number;
  readonly #pollIntervalMs: number;
  readonly #retry: BackoffOptions;
  readonly #purgeIntervalMs: number;
  readonly #onFinished: ((job: JobRecord) => void) | undefined;
  readonly #onError: JobRunnerOptions['onError'];
  readonly #running = new Map<string, Running>();
  readonly #settling = new Set<Promise<void>>();
  /** Slots promised to jobs being created in this process (hand-off), not yet running. */
  #reserved = 0;
  /** The last claim found fewer due jobs than free slots: nothing older waits in the queue. */
  #drained = false;
  #wake: (() => void) | undefined;
  #woken = false;
  #wakeScheduled = false;
  /** One timer renews the leases of every running job; one more fires at the earliest deadline. */
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineAt = Number.POSITIVE_INFINITY;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #purgeTimer: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: JobRunnerOptions) {
    this.#store = options.store;
    this.#service = options.service;
    this.#operations = options.operations;
    this.#names = [...options.operations.keys()];
    const perOperation: Record<string, number> = {};
    for (const [name, settings] of options.operations) if (settings.concurrency !== undefined) perOperation[name] = settings.concurrency;
    this.#perOperation = perOperation;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${newSecretId().slice(0, 8)}`;
    this.#concurrency = options.concurrency ?? 8;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(this.#leaseMs / 3));
    if (this.#heartbeatMs >= this.#leaseMs) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'worker.heartbeatMs must be shorter than worker.leaseMs' });
    }
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
    this.#retry = { baseMs: 1_000, maxMs: 60_000, factor: 2, jitter: 'full', ...options.retry };
    this.#purgeIntervalMs = options.purgeIntervalMs ?? 60_000;
    this.#onFinished = options.onFinished;
    this.#onError = options.onError;
  }

  /** The lease of a job this worker claims, in ms: each heartbeat renews it to now + `leaseMs`. */
  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** Jobs running in this worker now. */
  get running(): number {
    return this.#running.size;
  }

  /** Starts claiming. */
  start(): this {
    if (this.#loop !== undefined || this.#stopping || this.#names.length === 0) return this;
    this.#loop = this.#claimLoop();
    this.#purgeTimer = setInterval(() => {
      this.#store.purge().catch((error: unknown) => this.#report(error, { phase: 'purge' }));
    }, this.#purgeIntervalMs);
    this.#purgeTimer.unref();
    return this;
  }

  /**
   * Looks for due jobs soon (a job was just submitted in this process, or one finished here). Wakes
   * of one turn of the event loop are coalesced into one claim.
   */
  wake(): void {
    this.#woken = true;
    if (this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    setImmediate(() => {
      this.#wakeScheduled = false;
      this.#wake?.();
    });
  }

  /**
   * Hand-off of a job about to be created in this process: when a slot is free, the queue was
   * found empty and the operation has no cluster-wide concurrency limit, reserves the slot and
   * answers what `create` needs to lease the new job to this worker (`claimFor`). Every answer
   * other than `undefined` must be followed by one `adopt` call.
   */
  reserve(operation: string): { readonly workerId: string; readonly leaseMs: number } | undefined {
    if (this.#loop === undefined || this.#stopping || !this.#drained) return undefined;
    if (!this.#operations.has(operation) || this.#perOperation[operation] !== undefined) return undefined;
    if (this.#running.size + this.#reserved >= this.#concurrency) return undefined;
    this.#reserved += 1;
    return { workerId: this.workerId, leaseMs: this.#leaseMs };
  }

  /**
   * Ends a reservation: runs the job the store leased to this worker, or frees the slot (and looks
   * for jobs). The job starts on `setImmediate`, after the submit's answer was written.
   */
  adopt(claim: JobClaim | undefined): void {
    if (claim === undefined) {
      this.#reserved -= 1;
      this.wake();
      return;
    }
    setImmediate(() => {
      this.#reserved -= 1;
      if (!this.#stopping) {
        this.#start(claim);
        return;
      }
      // Shutting down: hand the job back at once instead of starting it.
      this.#store.release?.(claim.lease).catch((error: unknown) => this.#report(error, { jobId: claim.job.id, phase: 'release' }));
    });
  }

  /** Aborts the handler of a job running here at once (its cancel was requested). */
  cancel(jobId: string): void {
    this.#running.get(jobId)?.stop('cancel');
  }

  /**
   * Graceful shutdown: stops claiming, lets running jobs finish for `timeoutMs`, then aborts them
   * and puts them back in the queue (or fails them when no attempt is left).
   */
  close(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    this.#closed ??= this.#shutdown(options.timeoutMs ?? 10_000);
    return this.#closed;
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#purgeTimer);
    this.#wake?.();
    await this.#loop;
    if (this.#settling.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.allSettled([...this.#settling]), timeout]);
      clearTimeout(timer);
      for (const running of this.#running.values()) running.stop('shutdown');
      await Promise.allSettled([...this.#settling]);
    }
  }

  async #claimLoop(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      const free = this.#concurrency - this.#running.size - this.#reserved;
      let claimed = 0;
      if (free > 0) {
        this.#woken = false;
        try {
          const claims = await this.#store.claim({
            workerId: this.workerId,
            leaseMs: this.#leaseMs,
            limit: free,
            operations: this.#names,
            concurrency: this.#perOperation,
          });
          failures = 0;
          claimed = claims.length;
          this.#drained = claimed < free;
          for (const claim of claims) this.#start(claim);
        } catch (error) {
          failures += 1;
          this.#report(error, { phase: 'claim' });
          await this.#idle(Math.max(this.#pollIntervalMs, backoffDelay(failures, { baseMs: 200, maxMs: 10_000, jitter: 'equal' })));
          continue;
        }
        if (claimed === free || this.#woken) continue;
      }
      await this.#idle(this.#pollIntervalMs);
    }
  }

  #idle(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #start(claim: JobClaim): void {
    const { job } = claim;
    const settings = this.#operations.get(job.operation);
    const controller = new AbortController();
    let stop!: (reason: StopReason) => void;
    const stopped = new Promise<void>((resolve) => {
      stop = (reason) => {
        if (running.reason !== undefined) return;
        running.reason = reason;
        controller.abort(stopError(reason, job, settings));
        resolve();
      };
    });
    const now = performance.now();
    const running: Running = {
      claim,
      controller,
      reason: undefined,
      stopped,
      stop,
      progress: undefined,
      writingProgress: false,
      deadline: now + (settings?.timeoutMs ?? Number.POSITIVE_INFINITY),
      renewedAt: now,
    };
    this.#running.set(job.id, running);
    this.#scheduleTimers(running);
    publishState(job.id, job.operation, 'running', job.traceparent);
    const settle = this.#traced(running, settings).finally(() => {
      this.#running.delete(job.id);
      this.#settling.delete(settle);
      if (this.#running.size === 0) this.#stopTimers();
      this.wake();
    });
    this.#settling.add(settle);
  }

  /** `#run`, traced on `switchboard:job:run` when someone listens. */
  #traced(running: Running, settings: ResolvedOperation | undefined): Promise<void> {
    if (!tracing.jobRun.hasSubscribers) return this.#run(running, settings);
    const { job } = running.claim;
    running.trace = {
      service: this.#service.contract.name,
      operation: job.operation,
      jobId: job.id,
      traceparent: job.traceparent,
      idempotencyKey: job.idempotencyKey,
      attempt: job.attempts,
    };
    return traceAsync(tracing.jobRun, running.trace, () => this.#run(running, settings));
  }

  async #run(running: Running, settings: ResolvedOperation | undefined): Promise<void> {
    const { job, lease } = running.claim;
    if (settings === undefined) {
      // Claimed by operation name, so this cannot happen unless the store disagrees; fail loudly.
      const error = new SwitchboardError('SB_UNKNOWN_OPERATION', { detail: `This worker does not run ${job.operation}` });
      await this.#settle(running, () => this.#store.fail(lease, error.toProblem()));
      return;
    }
    const deadline = Date.now() + settings.timeoutMs;
    const context = new JobHandlerContext(job, running.controller.signal, deadline, (progress) => this.#progress(running, progress));
    const outcome = await Promise.race([this.#service.invoke(job.operation, job.input, context), running.stopped.then(() => undefined)]);
    await this.#finish(running, outcome);
  }

  async #finish(running: Running, outcome: OperationOutcome | undefined): Promise<void> {
    const { job, lease } = running.claim;
    const store = this.#store;
    switch (running.reason) {
      case 'lost':
        return;
      case 'cancel':
        await this.#settle(running, () => store.fail(lease, canceledProblem()));
        return;
      case 'shutdown': {
        // Handed back without consuming an attempt; a store without `release` counts the attempt.
        if (store.release !== undefined) {
          const release = store.release.bind(store);
          await this.#settle(running, async () => {
            const outcome = await release(lease);
            return outcome === 'released' ? 'retrying' : outcome;
          });
          return;
        }
        const problem = new SwitchboardError('SB_OVERLOADED', { detail: 'The worker shut down while the job ran' }).toProblem();
        await this.#settle(running, () => store.fail(lease, problem, { retryDelayMs: 0 }));
        return;
      }
      case 'timeout': {
        const detail = `Job ${job.operation} ran past its time limit of ${this.#operations.get(job.operation)?.timeoutMs} ms`;
        await this.#settle(running, () => store.fail(lease, new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail }).toProblem()));
        return;
      }
      case undefined:
        break;
    }
    if (outcome === undefined) return;
    if (outcome.ok) {
      const result = outcome.value ?? null;
      if (!serializable(result)) {
        // Settling would fail on every attempt and the lease would expire into a re-run: fail for good.
        this.#report(new SwitchboardError('SB_RESULT_NOT_SERIALIZABLE', { detail: `The result of job ${job.id} is not JSON` }), {
          jobId: job.id,
          operation: job.operation,
          phase: 'handler',
        });
        await this.#settle(running, () => store.fail(lease, NOT_SERIALIZABLE));
        return;
      }
      await this.#settle(running, () => store.complete(lease, result));
      return;
    }
    this.#report(outcome.error, { jobId: job.id, operation: job.operation, phase: 'handler' });
    const problem: ProblemDetails = outcome.problem;
    const retry = problem.retryable === true && job.attempts < job.maxAttempts;
    const delay = retry ? Math.max(outcome.retryAfterMs ?? 0, backoffDelay(job.attempts, this.#retry)) : undefined;
    await this.#settle(running, () => store.fail(lease, problem, delay === undefined ? undefined : { retryDelayMs: delay }));
  }

  /** Writes the outcome, retrying a store that is briefly unavailable; then announces it. */
  async #settle(running: Running, write: () => Promise<SettleOutcome>): Promise<void> {
    const { job } = running.claim;
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await write();
        const trace = running.trace;
        if (trace !== undefined) {
          trace.jobStatus = outcome === 'retrying' ? 'queued' : outcome;
          if (outcome !== 'succeeded' && outcome !== 'retrying') trace.outcome = 'error';
          if (trace.outcome === 'error') trace.errorType ??= running.reason ?? outcome;
        }
        if (outcome === 'lost') return;
        publishState(job.id, job.operation, outcome === 'retrying' ? 'queued' : outcome, job.traceparent);
        if (outcome !== 'retrying' && channels.jobComplete.hasSubscribers) {
          channels.jobComplete.publish({
            service: this.#service.contract.name,
            operation: job.operation,
            jobId: job.id,
            status: outcome,
            traceparent: job.traceparent,
            durationMs: Date.now() - job.createdAt,
            attempts: job.attempts,
          });
        }
        if (outcome !== 'retrying') await this.#announce(job.id);
        return;
      } catch (error) {
        this.#report(error, { jobId: job.id, operation: job.operation, phase: 'settle' });
        // Give up: the lease expires and another attempt runs the job again.
        if (attempt >= SETTLE_ATTEMPTS) return;
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, { baseMs: 100, maxMs: 2_000, jitter: 'equal' })));
      }
    }
  }

  async #announce(jobId: string): Promise<void> {
    if (this.#onFinished === undefined) return;
    try {
      const found = await this.#store.get(jobId);
      if (found.state === 'found') this.#onFinished(found.job);
    } catch (error) {
      this.#report(error, { jobId, phase: 'announce' });
    }
  }

  /** Starts the shared heartbeat timer, and moves the deadline timer earlier when this job's deadline is the first. */
  #scheduleTimers(running: Running): void {
    if (this.#heartbeatTimer === undefined) {
      // Ticks twice per heartbeatMs and renews leases at least heartbeatMs / 2 old: never later than heartbeatMs.
      const tick = Math.max(1, Math.floor(this.#heartbeatMs / 2));
      this.#heartbeatTimer = setInterval(() => this.#renewLeases(), tick);
    }
    if (running.deadline < this.#deadlineAt) this.#armDeadline(running.deadline);
  }

  #armDeadline(at: number): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    this.#deadlineTimer = Number.isFinite(at) ? setTimeout(() => this.#expireDeadlines(), Math.max(0, at - performance.now())) : undefined;
  }

  /** Stops the jobs past their deadline and arms the timer for the next one. */
  #expireDeadlines(): void {
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const running of this.#running.values()) {
      if (running.reason !== undefined) continue;
      if (running.deadline <= now) running.stop('timeout');
      else if (running.deadline < next) next = running.deadline;
    }
    this.#deadlineAt = Number.POSITIVE_INFINITY;
    this.#deadlineTimer = undefined;
    if (Number.isFinite(next)) this.#armDeadline(next);
  }

  #renewLeases(): void {
    const due = performance.now() - this.#heartbeatMs / 2;
    for (const running of this.#running.values()) {
      if (running.reason === undefined && running.renewedAt <= due) {
        running.renewedAt = performance.now();
        void this.#heartbeat(running);
      }
    }
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = undefined;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Number.POSITIVE_INFINITY;
  }

  async #heartbeat(running: Running): Promise<void> {
    if (running.reason !== undefined) return;
    try {
      const state = await this.#store.heartbeat(running.claim.lease, this.#leaseMs);
      if (state === 'cancel-requested') running.stop('cancel');
      else if (state === 'lost') running.stop('lost');
    } catch (error) {
      // The store is down: keep running; fencing protects the job if the lease runs out meanwhile.
      this.#report(error, { jobId: running.claim.job.id, operation: running.claim.job.operation, phase: 'heartbeat' });
    }
  }

  /** Coalesces progress: at most one write in flight per job, the latest value wins. */
  #progress(running: Running, progress: Progress): void {
    if (running.reason !== undefined) return;
    running.progress = progress;
    if (running.writingProgress) return;
    running.writingProgress = true;
    void (async () => {
      while (running.progress !== undefined && running.reason === undefined) {
        const next = running.progress;
        running.progress = undefined;
        try {
          const state = await this.#store.progress(running.claim.lease, next);
          if (state === 'cancel-requested') running.stop('cancel');
          else if (state === 'lost') running.stop('lost');
        } catch (error) {
          this.#report(error, { jobId: running.claim.job.id, phase: 'progress' });
        }
      }
      running.writingProgress = false;
    })();
  }

  #report(error: unknown, info: { readonly jobId?: string; readonly operation?: string; readonly phase: string }): void {
    if (this.#onError === undefined) return;
    try {
      this.#onError(error, info);
    } catch {
      // A failing reporter must not stop the worker.
    }
  }
}

function stopError(reason: StopReason, job: JobRecord, settings: ResolvedOperation | undefined): SwitchboardError {
  switch (reason) {
    case 'cancel':
      return new SwitchboardError('SB_JOB_CANCELED', { detail: `Job ${job.id} was canceled` });
    case 'lost':
      return new SwitchboardError('SB_CONFLICT', { detail: `Job ${job.id} was taken over by another worker` });
    case 'timeout':
      return new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `Job ${job.operation} ran past ${settings?.timeoutMs} ms` });
    case 'shutdown':
      return new SwitchboardError('SB_OVERLOADED', { detail: 'The worker is shutting down' });
  }
}

function publishState(jobId: string, operation: string, status: string, traceparent: string | undefined): void {
  if (channels.jobState.hasSubscribers) channels.jobState.publish({ jobId, operation, status, traceparent });
}
