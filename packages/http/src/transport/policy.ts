import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Health } from '../client/failure.js';
import type { Trace } from '../client/trace.js';

/** What one attempt ended with, as the retry and breaker interceptors see it. */
export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: Buffer | undefined }
  | { readonly kind: 'error'; readonly error: Error };

/** What an attempt means: try again? was the upstream healthy? */
export interface Verdict {
  readonly retry: boolean;
  readonly health: Health;
  /** From `Retry-After`. */
  readonly retryAfterMs?: number | undefined;
}

/** How a request may be repeated. */
export interface RetryPlan {
  /** Most attempts, the first included. */
  readonly attempts: number;
  /** Pause before the attempt after `attempt`, given the upstream's `Retry-After`. */
  delay(attempt: number, retryAfterMs: number | undefined): number;
  /** Ends a pause early (the client closed): the last attempt's outcome stands. */
  readonly closing?: AbortSignal;
}

/** Told about each attempt (diagnostics channels, the jobs client's `onRequest`). */
export interface AttemptObserver {
  start?(attempt: number, traceparent: string | undefined): void;
  end?(attempt: number, traceparent: string | undefined, status: number | undefined, error: Error | undefined): void;
}

/**
 * Switchboard's part of a request's dispatch options (`opts.switchboard`): what the interceptors of
 * the transport act on. Every member is optional; a request without any passes straight through.
 * One policy per request: the interceptors keep per-attempt state in it, and set per-attempt
 * headers (`traceparent`, `Switchboard-Timeout-Ms`, `authorization`) on the request's own header
 * record, which must be a plain object made for this request.
 */
export interface CallPolicy {
  /** Tracing: each attempt continues this trace with a new span id (`traceparent`), and its `tracestate`. */
  readonly trace?: Trace;
  /** Deadline: epoch ms by which the whole call must end. */
  readonly deadline?: number;
  /** Deadline: limit of one attempt, in ms. */
  readonly attemptTimeoutMs?: number | undefined;
  /** Deadline: send the attempt's budget as `Switchboard-Timeout-Ms`. */
  readonly budgetHeader?: boolean;
  /** Retry: absent or one attempt, the request is sent once. */
  readonly retry?: RetryPlan | undefined;
  /** Retry and breaker: the meaning of an attempt. Without it, only transport errors count as faults. */
  classify?(result: AttemptResult): Verdict;
  readonly observe?: AttemptObserver | undefined;
  /** The attempt under way, set by the retry interceptor before each dispatch (for the interceptors inside it). */
  attempt?: AttemptState;
}

/** Per-attempt state the interceptors of one attempt share (set by the retry interceptor). */
export interface AttemptState {
  readonly number: number;
  verdict: Verdict | undefined;
  traceparent: string | undefined;
}

/** Dispatch options as the interceptors receive them. */
export type PolicyDispatchOptions = Dispatcher.DispatchOptions & { readonly switchboard?: CallPolicy };

/** A request option undici does not know: carried through `dispatch`, ignored by the network. */
export function policyOf(opts: Dispatcher.DispatchOptions): CallPolicy | undefined {
  return (opts as PolicyDispatchOptions).switchboard;
}

export function attemptOf(opts: Dispatcher.DispatchOptions): AttemptState | undefined {
  return (opts as PolicyDispatchOptions).switchboard?.attempt;
}

/** Why the transport itself cut an attempt: the call's deadline or the attempt's own limit. */
export class CutError extends Error {
  readonly cut: 'deadline' | 'attempt';
  constructor(cut: 'deadline' | 'attempt') {
    super(cut === 'deadline' ? "The call's deadline passed" : 'The attempt timed out');
    this.name = 'CutError';
    this.cut = cut;
  }
}

/** The circuit of the upstream is open: nothing was sent. */
export class CircuitOpenError extends Error {
  readonly retryAfterMs: number;
  readonly state: string;
  constructor(state: string, retryAfterMs: number) {
    super(`The circuit is ${state}`);
    this.name = 'CircuitOpenError';
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/** A controller for answering a handler before any network dispatch (failing fast). */
export function detachedController(): Dispatcher.DispatchController {
  let aborted = false;
  let reason: Error | null = null;
  return {
    get aborted() {
      return aborted;
    },
    get paused() {
      return false;
    },
    get reason() {
      return reason;
    },
    abort(why: Error) {
      aborted = true;
      reason = why;
    },
    pause() {},
    resume() {},
  };
}

/** Fails `handler` at once, as a dispatch that never reached the network. */
export function failFast(handler: Dispatcher.DispatchHandler, error: Error): boolean {
  const controller = detachedController();
  handler.onRequestStart?.(controller, {});
  handler.onResponseError?.(controller, error);
  return true;
}
