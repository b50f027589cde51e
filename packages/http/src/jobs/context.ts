import type { HandlerContext, Invocation, JobRecord, Progress } from '@switchboard/core';
import { continueTrace } from '@switchboard/core';

/** The `HandlerContext` of a handler run as a job: `via: 'job'`, the job id, progress reporting. */
export class JobHandlerContext implements HandlerContext {
  readonly operation: string;
  readonly via: Invocation = 'job';
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  readonly idempotencyKey: string | undefined;
  readonly jobId: string;
  readonly principal: string | undefined;
  readonly #report: (progress: Progress) => void;

  constructor(job: JobRecord, signal: AbortSignal, deadline: number, report: (progress: Progress) => void) {
    this.operation = job.operation;
    this.signal = signal;
    this.deadline = deadline;
    // Every attempt is a new span of the submitter's trace; a stored context is re-validated.
    const trace = continueTrace(job.traceparent, job.tracestate);
    this.traceparent = trace.traceparent;
    this.tracestate = trace.tracestate;
    this.idempotencyKey = job.idempotencyKey === undefined ? undefined : idempotencyKeyOf(job.operation, job.idempotencyKey);
    this.jobId = job.id;
    this.principal = job.owner ?? undefined;
    this.#report = report;
  }

  progress(progress: Progress): void {
    this.#report(progress);
  }
}

/** Keys are stored per operation (`{operation}:{key}`), as the HTTP idempotency layer scopes them. */
export function storedIdempotencyKey(operation: string, key: string): string {
  return `${operation}:${key}`;
}

function idempotencyKeyOf(operation: string, stored: string): string {
  return stored.startsWith(`${operation}:`) ? stored.slice(operation.length + 1) : stored;
}
