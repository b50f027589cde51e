import type { Dispatcher } from 'undici';
import type { CircuitBreaker } from '../client/breaker.js';
import { ForwardHandler } from './forward.js';
import type { AttemptState } from './policy.js';
import { attemptOf, CircuitOpenError, failFast } from './policy.js';

/**
 * Circuit breaker: each attempt takes a ticket from `breaker` (failing fast with
 * `CircuitOpenError` when the circuit is open) and settles it with the attempt's verdict: healthy
 * (`success`), a fault (`failure`), or nothing learned (`release`).
 */
export function breaker(circuit: CircuitBreaker): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const ticket = circuit.acquire();
    if (ticket === undefined) return failFast(handler, new CircuitOpenError(circuit.state, circuit.retryAfterMs));
    return dispatch(opts, new BreakerHandler(handler, circuit, ticket, attemptOf(opts)));
  };
}

class BreakerHandler extends ForwardHandler {
  readonly #circuit: CircuitBreaker;
  readonly #ticket: number;
  readonly #attempt: AttemptState | undefined;

  constructor(next: Dispatcher.DispatchHandler, circuit: CircuitBreaker, ticket: number, attempt: AttemptState | undefined) {
    super(next);
    this.#circuit = circuit;
    this.#ticket = ticket;
    this.#attempt = attempt;
  }

  #settle(fallback: 'success' | 'failure'): void {
    const health = this.#attempt?.verdict?.health;
    if (health === 'up' || (health === undefined && fallback === 'success')) this.#circuit.success(this.#ticket);
    else if (health === 'fault' || health === undefined) this.#circuit.failure(this.#ticket);
    else this.#circuit.release(this.#ticket);
  }

  override onResponseStart(...args: Parameters<ForwardHandler['onResponseStart']>): void {
    this.#settle('success');
    super.onResponseStart(...args);
  }

  override onResponseError(...args: Parameters<ForwardHandler['onResponseError']>): void {
    this.#settle('failure');
    super.onResponseError(...args);
  }
}
