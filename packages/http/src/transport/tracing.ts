import type { Dispatcher } from 'undici';
import { attemptTraceparent } from '../client/trace.js';
import { ForwardHandler, headersOf } from './forward.js';
import { attemptOf, policyOf } from './policy.js';

/**
 * Tracing: every attempt of a request with a `trace` gets its own `traceparent` (the call's trace
 * id and flags, a new span id), and `tracestate` when the trace continues the caller's. Attempts
 * are reported to the policy's observer (diagnostics channels, `onRequest`).
 */
export function tracing(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const policy = policyOf(opts);
    const trace = policy?.trace;
    if (policy === undefined || (trace === undefined && policy.observe === undefined)) return dispatch(opts, handler);
    let traceparent: string | undefined;
    let next = opts;
    if (trace !== undefined) {
      traceparent = attemptTraceparent(trace);
      const headers = headersOf(opts);
      if (headers === undefined) {
        next = { ...opts, headers: trace.tracestate === undefined ? { traceparent } : { traceparent, tracestate: trace.tracestate } };
      } else {
        headers.traceparent = traceparent;
        // The tracestate belongs to the trace: sent with a continued one, never a stale one.
        if (trace.tracestate === undefined) delete headers.tracestate;
        else headers.tracestate = trace.tracestate;
      }
    }
    const attempt = attemptOf(opts);
    if (attempt !== undefined) attempt.traceparent = traceparent;
    const observe = policy.observe;
    if (observe === undefined) return dispatch(next, handler);
    const number = attempt?.number ?? 1;
    observe.start?.(number, traceparent);
    return dispatch(next, new ObservedHandler(handler, (status, error) => observe.end?.(number, traceparent, status, error)));
  };
}

class ObservedHandler extends ForwardHandler {
  readonly #end: (status: number | undefined, error: Error | undefined) => void;
  #status: number | undefined;

  constructor(next: Dispatcher.DispatchHandler, end: (status: number | undefined, error: Error | undefined) => void) {
    super(next);
    this.#end = end;
  }

  override onResponseStart(...args: Parameters<ForwardHandler['onResponseStart']>): void {
    this.#status = args[1];
    super.onResponseStart(...args);
  }

  override onResponseEnd(...args: Parameters<ForwardHandler['onResponseEnd']>): void {
    this.#end(this.#status, undefined);
    super.onResponseEnd(...args);
  }

  override onResponseError(...args: Parameters<ForwardHandler['onResponseError']>): void {
    this.#end(this.#status, args[1]);
    super.onResponseError(...args);
  }
}
