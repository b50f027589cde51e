import type { Dispatcher } from 'undici';
import { ForwardHandler, headersOf } from './forward.js';
import { CutError, failFast, policyOf } from './policy.js';

// setTimeout fires at once for delays beyond 2^31 - 1 ms; no real budget is that long.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Deadline: each attempt of a request with a `deadline` is cut when the call's deadline passes, or
 * after `attemptTimeoutMs` (the rest of the budget is kept for retries), with a `CutError` saying
 * which. An attempt whose deadline already passed is not sent. With `budgetHeader`, the attempt's
 * budget goes to the server as `Switchboard-Timeout-Ms`.
 */
export function deadline(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const policy = policyOf(opts);
    if (policy?.deadline === undefined) return dispatch(opts, handler);
    const remaining = policy.deadline - Date.now();
    if (remaining <= 0) return failFast(handler, new CutError('deadline'));
    const attemptLimit = policy.attemptTimeoutMs;
    const byAttempt = attemptLimit !== undefined && attemptLimit < remaining;
    const budget = Math.min(byAttempt ? (attemptLimit as number) : remaining, MAX_TIMER_MS);
    let next = opts;
    if (policy.budgetHeader === true) {
      const value = String(Math.max(1, Math.floor(budget)));
      const headers = headersOf(opts);
      if (headers === undefined) next = { ...opts, headers: { 'switchboard-timeout-ms': value } };
      else headers['switchboard-timeout-ms'] = value;
    }
    return dispatch(next, new DeadlineHandler(handler, budget, byAttempt ? 'attempt' : 'deadline'));
  };
}

class DeadlineHandler extends ForwardHandler {
  readonly #timer: NodeJS.Timeout;
  #controller: Dispatcher.DispatchController | undefined;
  #cut: CutError | undefined;

  constructor(next: Dispatcher.DispatchHandler, budget: number, kind: 'deadline' | 'attempt') {
    super(next);
    this.#timer = setTimeout(() => {
      this.#cut = new CutError(kind);
      this.#controller?.abort(this.#cut);
    }, budget);
  }

  override onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#controller = controller;
    super.onRequestStart(controller, context);
    if (this.#cut !== undefined) controller.abort(this.#cut);
  }

  override onResponseEnd(...args: Parameters<ForwardHandler['onResponseEnd']>): void {
    clearTimeout(this.#timer);
    super.onResponseEnd(...args);
  }

  override onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    clearTimeout(this.#timer);
    // The cut is the reason, whatever undici reports for the aborted socket.
    super.onResponseError(controller, this.#cut ?? error);
  }
}
