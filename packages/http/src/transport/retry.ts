import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AttemptState, CallPolicy, RetryPlan } from './policy.js';
import { policyOf } from './policy.js';

/**
 * Retry, in the shape of undici's `interceptor/retry.js`: dispatches the request again while the
 * attempt's verdict says a retry may help, up to `retry.attempts`, after `retry.delay(...)` (the
 * upstream's `Retry-After` first), never pausing past the call's deadline (the last answer is more
 * useful than a bare timeout). The handler downstream sees one request: only the final attempt's
 * answer or error reaches it. Aborting it (the caller's signal) aborts the attempt in flight or the
 * pause. Every attempt, the first included, carries its own `AttemptState`, which the breaker,
 * classify and tracing interceptors inside it use.
 */
export function retry(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const policy = policyOf(opts);
    if (policy === undefined) return dispatch(opts, handler);
    const state: AttemptState = { number: 1, verdict: undefined, traceparent: undefined };
    const plan = policy.retry;
    if (plan === undefined || plan.attempts <= 1) {
      policy.attempt = state;
      return dispatch(opts, handler);
    }
    return new RetryHandler(dispatch, opts, handler, policy, plan).start(state);
  };
}

class RetryHandler implements Dispatcher.DispatchController {
  readonly #dispatch: Dispatcher.Dispatch;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #policy: CallPolicy;
  readonly #plan: RetryPlan;
  #current: Dispatcher.DispatchController | undefined;
  #started = false;
  #aborted: Error | null = null;
  #pause: NodeJS.Timeout | undefined;
  /** Pause before the next attempt, decided when the last one ended. */
  #delay = 0;
  #onClosing: (() => void) | undefined;

  constructor(
    dispatch: Dispatcher.Dispatch,
    opts: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
    policy: CallPolicy,
    plan: RetryPlan,
  ) {
    this.#dispatch = dispatch;
    this.#opts = opts;
    this.#handler = handler;
    this.#policy = policy;
    this.#plan = plan;
  }

  // --- the controller the downstream handler holds --------------------------------------------

  get aborted(): boolean {
    return this.#aborted !== null;
  }
  get paused(): boolean {
    return this.#current?.paused ?? false;
  }
  get reason(): Error | null {
    return this.#aborted;
  }
  abort(reason: Error): void {
    if (this.#aborted !== null) return;
    this.#aborted = reason;
    if (this.#pause !== undefined) {
      this.#endPause();
      this.#handler.onResponseError?.(this, reason);
      return;
    }
    this.#current?.abort(reason);
  }
  pause(): void {
    this.#current?.pause();
  }
  resume(): void {
    this.#current?.resume();
  }

  // --- attempts --------------------------------------------------------------------------------

  start(state: AttemptState): boolean {
    this.#policy.attempt = state;
    return this.#dispatch(this.#opts, this.#attemptHandler(state));
  }

  #attemptHandler(state: AttemptState): Dispatcher.DispatchHandler {
    let committed = false;
    return {
      onRequestStart: (controller, context) => {
        this.#current = controller;
        if (this.#aborted !== null) controller.abort(this.#aborted);
        if (!this.#started) {
          this.#started = true;
          this.#handler.onRequestStart?.(this, context);
        }
      },
      onRequestUpgrade: (_controller, status: number, headers: IncomingHttpHeaders, socket: Duplex) => {
        this.#handler.onRequestUpgrade?.(this, status, headers, socket);
      },
      onResponseStart: (_controller, status, headers, message) => {
        committed = !this.#again(state);
        if (committed) this.#handler.onResponseStart?.(this, status, headers, message);
      },
      onResponseData: (_controller, chunk) => {
        if (committed) this.#handler.onResponseData?.(this, chunk);
      },
      onResponseEnd: (_controller, trailers) => {
        if (committed) this.#handler.onResponseEnd?.(this, trailers);
        else this.#schedule(state);
      },
      onResponseError: (_controller, error) => {
        if (committed || this.#aborted !== null || !this.#again(state)) this.#handler.onResponseError?.(this, this.#aborted ?? error);
        else this.#schedule(state);
      },
    };
  }

  /** Whether the attempt that just ended is followed by another. */
  #again(state: AttemptState): boolean {
    const verdict = state.verdict;
    if (verdict === undefined || !verdict.retry || this.#aborted !== null || state.number >= this.#plan.attempts) return false;
    this.#delay = this.#plan.delay(state.number, verdict.retryAfterMs);
    const deadline = this.#policy.deadline;
    return deadline === undefined || Date.now() + this.#delay < deadline;
  }

  #schedule(state: AttemptState): void {
    const delay = this.#delay;
    const next: AttemptState = { number: state.number + 1, verdict: undefined, traceparent: undefined };
    const closing = this.#plan.closing;
    if (closing?.aborted === true) {
      this.#handler.onResponseError?.(this, new RetryPauseClosed());
      return;
    }
    if (closing !== undefined) {
      this.#onClosing = () => {
        this.#endPause();
        this.#handler.onResponseError?.(this, new RetryPauseClosed());
      };
      closing.addEventListener('abort', this.#onClosing, { once: true });
    }
    this.#pause = setTimeout(() => {
      this.#endPause();
      this.start(next);
    }, delay);
  }

  #endPause(): void {
    clearTimeout(this.#pause);
    this.#pause = undefined;
    if (this.#onClosing !== undefined) this.#plan.closing?.removeEventListener('abort', this.#onClosing);
    this.#onClosing = undefined;
  }
}

/** The transport closed while a request waited to be retried. */
export class RetryPauseClosed extends Error {
  constructor() {
    super('The transport was closed while waiting to retry');
    this.name = 'RetryPauseClosed';
  }
}
