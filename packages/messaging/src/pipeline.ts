import type { Readable } from 'node:stream';
import type { CloudEvent, DeadLetterReason, Delivery, ProblemDetails, TraceContext } from '@switchboard/core';
import type { Route } from './routes.js';
import type { AttachmentInfo } from './types.js';

/** Where a delivery came from: a broker subscription, or the CloudEvents HTTP endpoint. */
export type InboundVia = 'broker' | 'http';

/**
 * One delivery travelling through the consumer pipeline, its CloudEvent decoded once (by the
 * consumer, before the pipeline): the inbox, receipts, middleware and handler all read `event`.
 * Middlewares fill in the rest, outer to inner.
 */
export interface Inbound {
  readonly delivery: Delivery;
  /** The CloudEvent: its `source` + `id` are the message's identity, `id` its MessageId. */
  readonly event: CloudEvent;
  readonly group: string;
  readonly via: InboundVia;
  /**
   * The principal that delivered the event, kept with its receipt when the receipt is created: the
   * authenticated caller of `POST /events`, or (on a broker) the sender a verified signature names.
   */
  sender?: string | undefined;
  /** Attempt number used for retry decisions (the broker's, or the inbox's for HTTP). */
  attempt: number;
  /** Aborted when the consumer closes; the timeout middleware replaces it with a per-run signal. */
  signal: AbortSignal;
  /** Set by `route`. */
  route?: Route;
  /** The data to validate and hand over (the event's, or the claim-checked data fetched by `claimCheck`). */
  data?: unknown;
  /** Set by `claimCheck` when the event carries an attachment. */
  attachment?: { readonly info: AttachmentInfo; open(): Readable };
  /** A claim-check failure seen while the handler read the attachment: it decides the outcome. */
  attachmentFailure?: unknown;
  /** The delivery's own trace context, when it was made before the run (an observed delivery's, published on `switchboard:process`). */
  trace?: TraceContext | undefined;
}

/**
 * The `Inbound` the consumer builds for each delivery. Its `signal` may be deferred: the timeout
 * middleware hands it a source whose `AbortController` is only made when the signal is first read,
 * which most handlers never do.
 */
export class InboundMessage implements Inbound {
  readonly delivery: Delivery;
  readonly event: CloudEvent;
  readonly group: string;
  readonly via: InboundVia;
  sender?: string | undefined;
  attempt: number;
  route?: Route;
  data?: unknown;
  attachment?: { readonly info: AttachmentInfo; open(): Readable };
  attachmentFailure?: unknown;
  trace?: TraceContext | undefined;
  #signal: AbortSignal | undefined;
  #signalSource: { readonly signal: AbortSignal } | undefined;

  constructor(delivery: Delivery, event: CloudEvent, group: string, via: InboundVia, signal: AbortSignal) {
    this.delivery = delivery;
    this.event = event;
    this.group = group;
    this.via = via;
    this.attempt = delivery.attempt;
    this.#signal = signal;
  }

  get signal(): AbortSignal {
    if (this.#signal === undefined) this.#signal = this.#signalSource!.signal;
    return this.#signal;
  }

  set signal(signal: AbortSignal) {
    this.#signal = signal;
    this.#signalSource = undefined;
  }

  /** From now on, `signal` is `source.signal`, read on first use. */
  deferSignal(source: { readonly signal: AbortSignal }): void {
    this.#signal = undefined;
    this.#signalSource = source;
  }
}

/** What becomes of a delivery. `settle` turns it into ack / nack(delay). */
export type Outcome =
  | { readonly kind: 'ack'; readonly result?: string; readonly skipped?: 'duplicate' | 'dead-lettered' | 'filtered' }
  /** Redeliver after `delayMs`; `counted` is false when no handler run was spent (inbox: another worker holds it). */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error?: ProblemDetails; readonly counted: boolean }
  | { readonly kind: 'dead-letter'; readonly reason: DeadLetterReason; readonly error: ProblemDetails };

export type Step = (message: Inbound) => Promise<Outcome>;

/** Watermill-style middleware: wraps the next step. One concern per middleware. */
export type Middleware = (next: Step) => Step;

/** `[a, b, c]` around `final` gives `a(b(c(final)))`: the first middleware is the outermost. */
export function compose(middlewares: readonly Middleware[], final: Step): Step {
  let step = final;
  for (let i = middlewares.length - 1; i >= 0; i--) step = middlewares[i]!(step);
  return step;
}
