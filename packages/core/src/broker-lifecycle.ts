import type { OutgoingMessage, Subscription } from './broker.js';
import { assertMessageSize, type BrokerErrors } from './broker-errors.js';

/**
 * The lifecycle every broker has, whatever its engine: the subscriptions it opened, a check that
 * it is still open, and a close that runs once: every subscription closes (draining as
 * `Subscription.close` does), then the engine's own teardown.
 */
export class BrokerLifecycle<S extends Subscription> {
  readonly #errors: BrokerErrors;
  readonly #subscriptions = new Set<S>();
  #closed: Promise<void> | undefined;

  constructor(errors: BrokerErrors) {
    this.#errors = errors;
  }

  /** True once `close` was called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** `SB_CLOSED` once `close` was called; `what` names the call, e.g. `publish`. */
  assertOpen(what: string): void {
    if (this.#closed !== undefined) throw this.#errors.closedError(what);
  }

  /** What every publish checks first: the broker is open (`SB_CLOSED`) and no body is over the limit (`SB_MESSAGE_TOO_LARGE`). */
  checkPublish(messages: readonly OutgoingMessage[], maxMessageBytes: number): void {
    this.assertOpen('publish');
    for (const message of messages) assertMessageSize(message.body.byteLength, maxMessageBytes, `message ${message.id}`);
  }

  /** Keeps a new subscription until it closes (its own close calls `forget`). */
  add(subscription: S): S {
    this.#subscriptions.add(subscription);
    return subscription;
  }

  forget(subscription: S): void {
    this.#subscriptions.delete(subscription);
  }

  /** How many subscriptions are open. */
  get size(): number {
    return this.#subscriptions.size;
  }

  /** The open subscriptions. */
  subscriptions(): IterableIterator<S> {
    return this.#subscriptions.values();
  }

  /**
   * Runs once, whoever calls it: `before` (e.g. sending publishes accepted earlier), then every
   * subscription closes, then `after` (connections, files). Calls from then on get `SB_CLOSED`
   * from `assertOpen`, and later `close` calls the first call's promise.
   */
  close(steps: { readonly before?: () => Promise<void>; readonly after?: () => Promise<void> } = {}): Promise<void> {
    this.#closed ??= (async () => {
      await steps.before?.();
      await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
      await steps.after?.();
    })();
    return this.#closed;
  }
}
