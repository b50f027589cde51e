import { SwitchboardError } from '@switchboard/core';
import { type DeadlineEntry, Deadlines } from '../deadlines.js';
import { type Inbound, InboundMessage, type Middleware, type Outcome } from '../pipeline.js';

/**
 * One handler run under a time limit. Its `AbortController` is made only when something reads the
 * run's signal (most handlers never do): it is then aborted by the consumer closing (the outer
 * signal) or by the time limit, whichever came or comes first.
 */
class TimedRun implements DeadlineEntry {
  deadline = 0;
  readonly #outer: AbortSignal;
  readonly #ms: number;
  readonly #reject: (error: unknown) => void;
  #controller: AbortController | undefined;
  #expired: SwitchboardError | undefined;

  constructor(outer: AbortSignal, ms: number, reject: (error: unknown) => void) {
    this.#outer = outer;
    this.#ms = ms;
    this.#reject = reject;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      if (this.#expired !== undefined) controller.abort(this.#expired);
      else if (this.#outer.aborted) controller.abort(this.#outer.reason);
      else this.#outer.addEventListener('abort', this.#onOuterAbort, { once: true });
    }
    return this.#controller.signal;
  }

  readonly #onOuterAbort = (): void => {
    this.#controller?.abort(this.#outer.reason);
  };

  expire(): void {
    const error = new SwitchboardError('SB_HANDLER_TIMEOUT', { detail: `the handler ran past ${this.#ms} ms` });
    this.#expired = error;
    this.#controller?.abort(error);
    this.finish();
    this.#reject(error);
  }

  /** The run ended (or expired): stop following the outer signal. */
  finish(): void {
    if (this.#controller !== undefined) this.#outer.removeEventListener('abort', this.#onOuterAbort);
  }
}

/**
 * Gives the handler `timeoutMs` (or its operation's `timeoutMs`). Past it, the run's signal is
 * aborted and the step fails with `SB_HANDLER_TIMEOUT` (retryable): the message is nacked and
 * redelivered. JavaScript cannot stop a handler that ignores its signal; its late result is dropped.
 * All runs share one timer (`Deadlines`), and a run's `AbortController` is only made when read.
 */
export function timeout(defaultMs: number): Middleware {
  const deadlines = new Deadlines();
  return (next) => (message: Inbound) =>
    new Promise<Outcome>((resolve, reject) => {
      const ms = message.route?.timeoutMs ?? defaultMs;
      const run = new TimedRun(message.signal, ms, reject);
      if (message instanceof InboundMessage) message.deferSignal(run);
      else message.signal = run.signal;
      deadlines.add(run, ms);
      next(message).then(
        (outcome) => {
          deadlines.remove(run, ms);
          run.finish();
          resolve(outcome);
        },
        (error: unknown) => {
          deadlines.remove(run, ms);
          run.finish();
          reject(error);
        },
      );
    });
}
