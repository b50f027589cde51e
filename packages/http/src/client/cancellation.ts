import { EventEmitter } from 'node:events';

/**
 * Cancels one request. undici takes an `EventEmitter` that emits `abort` as a request's `signal`;
 * creating one is an order of magnitude cheaper than an `AbortController` with a listener, and
 * the client needs one per attempt (for its deadline).
 */
export class Cancellation extends EventEmitter {
  aborted = false;
  reason: unknown;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}
