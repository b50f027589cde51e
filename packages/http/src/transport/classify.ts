import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { ForwardHandler } from './forward.js';
import type { AttemptState, CallPolicy, Verdict } from './policy.js';
import { policyOf } from './policy.js';

/** Error answers are read whole (up to this) before the retry and breaker decide; longer ones stream. */
const MAX_BUFFERED = 1024 * 1024;

function defaultVerdict(status: number | undefined): Verdict {
  return { retry: false, health: status === undefined || status >= 500 ? 'fault' : 'up' };
}

/**
 * Gives each attempt its verdict (`AttemptState.verdict`), which the breaker and retry
 * interceptors around it act on. A 2xx answer is judged on its status and headers and streams on;
 * any other answer is read whole first (its problem document says whether a retry may help), then
 * handed on unchanged; a transport error is judged as it is.
 */
export function classify(options: { readonly breaker?: boolean } = {}): Dispatcher.DispatcherComposeInterceptor {
  const always = options.breaker !== false;
  return (dispatch) => (opts, handler) => {
    const policy = policyOf(opts);
    const attempt = policy?.attempt;
    // Without a breaker or a retry nobody reads the verdict: pass straight through.
    if (attempt === undefined || (!always && (policy?.retry === undefined || policy.retry.attempts <= 1))) return dispatch(opts, handler);
    return dispatch(opts, new ClassifyHandler(handler, policy, attempt));
  };
}

interface Held {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly message: string | undefined;
}

class ClassifyHandler extends ForwardHandler {
  readonly #policy: CallPolicy | undefined;
  readonly #attempt: AttemptState;
  #held: Held | undefined;
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(next: Dispatcher.DispatchHandler, policy: CallPolicy | undefined, attempt: AttemptState) {
    super(next);
    this.#policy = policy;
    this.#attempt = attempt;
  }

  override onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
    message?: string,
  ): void {
    const judge = this.#policy?.classify;
    if (judge === undefined || (status >= 200 && status < 300)) {
      this.#attempt.verdict = judge === undefined ? defaultVerdict(status) : judge({ kind: 'response', status, headers, body: undefined });
      super.onResponseStart(controller, status, headers, message);
      return;
    }
    this.#held = { status, headers, message };
  }

  override onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#held === undefined) {
      super.onResponseData(controller, chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > MAX_BUFFERED) this.#release(controller, undefined);
  }

  override onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.#held !== undefined) this.#release(controller, Buffer.concat(this.#chunks, this.#size));
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#attempt.verdict === undefined) {
      const judge = this.#policy?.classify;
      this.#attempt.verdict = judge === undefined ? defaultVerdict(undefined) : judge({ kind: 'error', error });
    }
    super.onResponseError(controller, error);
  }

  /** Judges the held answer (with its whole body, or none when it was too long) and hands it on. */
  #release(controller: Dispatcher.DispatchController, body: Buffer | undefined): void {
    const held = this.#held as Held;
    this.#held = undefined;
    const judge = this.#policy?.classify as NonNullable<CallPolicy['classify']>;
    this.#attempt.verdict = judge({ kind: 'response', status: held.status, headers: held.headers, body });
    super.onResponseStart(controller, held.status, held.headers, held.message);
    const chunks = this.#chunks;
    this.#chunks = [];
    for (const chunk of chunks) super.onResponseData(controller, chunk);
  }
}
