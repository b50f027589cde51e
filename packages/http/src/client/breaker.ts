export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerStateChange {
  readonly from: BreakerState;
  readonly to: BreakerState;
  /** Epoch ms of the change. */
  readonly at: number;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  readonly failureThreshold?: number;
  /** Share of failures among the last `windowSize` calls that opens the circuit. Default 0.5. */
  readonly failureRatio?: number;
  /** Number of recent calls the failure ratio is computed over. Default 20. */
  readonly windowSize?: number;
  /** Calls needed in the window before the ratio is considered. Default 10. */
  readonly minimumCalls?: number;
  /** How long the circuit stays open before letting probes through, in ms. Default 10 000. */
  readonly cooldownMs?: number;
  /** Probe calls allowed at once while half-open. Default 1. */
  readonly halfOpenMaxCalls?: number;
  /** Successful probes that close the circuit again. Default 1. */
  readonly successThreshold?: number;
  /** Called on every state change. */
  readonly onStateChange?: (change: BreakerStateChange) => void;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!(result > 0) || !Number.isFinite(result)) throw new RangeError(`Circuit breaker option ${name} must be a positive number`);
  return result;
}

/**
 * A circuit breaker for one upstream. Closed, it counts outcomes; after `failureThreshold`
 * consecutive failures, or a failure ratio over the last `windowSize` calls, it opens and every
 * call fails fast. After `cooldownMs` it lets `halfOpenMaxCalls` probes through: enough successes
 * close it, one failure opens it again.
 *
 * Each call takes a ticket with {@link acquire} and settles it once with {@link success},
 * {@link failure} or {@link release}; tickets of an earlier state are ignored, so a slow call that
 * started before the circuit opened cannot close it.
 */
export class CircuitBreaker {
  readonly #failureThreshold: number;
  readonly #failureRatio: number;
  readonly #minimumCalls: number;
  readonly #cooldownMs: number;
  readonly #halfOpenMaxCalls: number;
  readonly #successThreshold: number;
  readonly #onStateChange: ((change: BreakerStateChange) => void) | undefined;
  readonly #now: () => number;

  #state: BreakerState = 'closed';
  #generation = 0;
  #consecutiveFailures = 0;
  readonly #window: Uint8Array;
  #windowNext = 0;
  #windowCount = 0;
  #windowFailures = 0;
  #openedAt = 0;
  #probesInFlight = 0;
  #probeSuccesses = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    this.#failureThreshold = positive('failureThreshold', options.failureThreshold, 5);
    this.#failureRatio = positive('failureRatio', options.failureRatio, 0.5);
    this.#window = new Uint8Array(positive('windowSize', options.windowSize, 20));
    this.#minimumCalls = positive('minimumCalls', options.minimumCalls, 10);
    this.#cooldownMs = positive('cooldownMs', options.cooldownMs, 10_000);
    this.#halfOpenMaxCalls = positive('halfOpenMaxCalls', options.halfOpenMaxCalls, 1);
    this.#successThreshold = positive('successThreshold', options.successThreshold, 1);
    this.#onStateChange = options.onStateChange;
    this.#now = options.now ?? Date.now;
  }

  /** The current state; an open circuit whose cool-down has passed reports `half-open`. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#cooldownMs) this.#transition('half-open');
    return this.#state;
  }

  /** Milliseconds until an open circuit lets a probe through (0 when not open). */
  get retryAfterMs(): number {
    if (this.#state !== 'open') return 0;
    return Math.max(0, this.#openedAt + this.#cooldownMs - this.#now());
  }

  /** Asks to send one call. Returns a ticket, or `undefined` when the call must fail fast. */
  acquire(): number | undefined {
    switch (this.state) {
      case 'closed':
        return this.#generation;
      case 'open':
        return undefined;
      case 'half-open':
        if (this.#probesInFlight >= this.#halfOpenMaxCalls) return undefined;
        this.#probesInFlight += 1;
        return this.#generation;
    }
  }

  /** The call reached a healthy upstream. */
  success(ticket: number): void {
    if (ticket !== this.#generation) return;
    if (this.#state === 'closed') {
      this.#consecutiveFailures = 0;
      this.#record(0);
    } else if (this.#state === 'half-open') {
      this.#probesInFlight -= 1;
      this.#probeSuccesses += 1;
      if (this.#probeSuccesses >= this.#successThreshold) this.#transition('closed');
    }
  }

  /** The upstream failed (unreachable, timed out, 5xx). */
  failure(ticket: number): void {
    if (ticket !== this.#generation) return;
    if (this.#state === 'closed') {
      this.#consecutiveFailures += 1;
      this.#record(1);
      const ratioReached = this.#windowCount >= this.#minimumCalls && this.#windowFailures / this.#windowCount >= this.#failureRatio;
      if (this.#consecutiveFailures >= this.#failureThreshold || ratioReached) this.#transition('open');
    } else if (this.#state === 'half-open') {
      this.#transition('open');
    }
  }

  /** The call ended without telling anything about the upstream (e.g. the caller aborted). */
  release(ticket: number): void {
    if (ticket !== this.#generation) return;
    if (this.#state === 'half-open') this.#probesInFlight -= 1;
  }

  #record(failed: 0 | 1): void {
    const size = this.#window.length;
    if (this.#windowCount === size) this.#windowFailures -= this.#window[this.#windowNext] ?? 0;
    else this.#windowCount += 1;
    this.#window[this.#windowNext] = failed;
    this.#windowFailures += failed;
    this.#windowNext = (this.#windowNext + 1) % size;
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    this.#generation += 1;
    this.#probesInFlight = 0;
    this.#probeSuccesses = 0;
    const at = this.#now();
    if (to === 'open') this.#openedAt = at;
    if (to === 'closed') {
      this.#consecutiveFailures = 0;
      this.#window.fill(0);
      this.#windowNext = 0;
      this.#windowCount = 0;
      this.#windowFailures = 0;
    }
    if (this.#onStateChange) {
      try {
        this.#onStateChange({ from, to, at });
      } catch {
        // An observer must not break calls.
      }
    }
  }
}
