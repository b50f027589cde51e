import type { ProblemDetails, ReceiptState, ReceiptStore, ReceiptUpdate } from '@switchboard/core';
import type { Inbound, Middleware, Outcome } from '../pipeline.js';
import { ReceiptWriter } from '../receipt-writer.js';

export interface InboxMiddlewareOptions {
  readonly store: ReceiptStore;
  /** Claim before running (deduplication). `false`: receipts are recorded, duplicates are not stopped. */
  readonly dedupe: boolean;
  /** Identifies this consumer in claim leases. */
  readonly owner: string;
  /** How long a claim holds: longer than the handler's time limit. */
  readonly leaseMs: number;
}

/**
 * The inbox and the receipts, keyed by (group, CloudEvents `source`, `id`): the event's identity,
 * never a transport id. Before the handler: `claim` it — an event already processed by this group
 * is acknowledged without running, one held by another worker is redelivered later. After it:
 * record `processed` (with a result summary), `failed` (with the problem and attempt) or
 * `dead-lettered`. Claims and records are batched by `ReceiptWriter`: one `claimBatch` / `record`
 * per tick, or one `recordAndClaim` where the store has it.
 */
export function inbox(options: InboxMiddlewareOptions): Middleware {
  const { store, owner, leaseMs } = options;
  const writer = new ReceiptWriter(store);
  return (next) => async (message) => {
    const { event, delivery } = message;
    let run = message.attempt;
    if (options.dedupe) {
      const claim = await writer.claim({
        group: message.group,
        source: event.source,
        messageId: event.id,
        owner,
        leaseMs,
        topic: delivery.topic,
        type: event.type,
        sender: message.sender,
      });
      switch (claim.outcome) {
        case 'duplicate-processed':
          return { kind: 'ack', skipped: 'duplicate' };
        case 'dead-lettered':
          return { kind: 'ack', skipped: 'dead-lettered' };
        case 'in-progress':
          return { kind: 'retry', delayMs: claim.retryAfterMs, counted: false };
        case 'claimed':
          run = claim.receipt.attempts;
          // Over HTTP every request is a first delivery: the inbox counts the attempts instead.
          if (message.via === 'http') message.attempt = run;
          break;
      }
    } else {
      await writer.record(update(message, 'processing', run, undefined, undefined));
    }
    const outcome: Outcome = await next(message);
    switch (outcome.kind) {
      case 'ack':
        await writer.record(update(message, 'processed', run, undefined, outcome.result));
        break;
      case 'retry':
        if (outcome.counted) await writer.record(update(message, 'failed', run, outcome.error, undefined));
        break;
      case 'dead-letter':
        await writer.record(update(message, 'dead-lettered', run, outcome.error, undefined));
        break;
    }
    return outcome;
  };
}

/** One receipt update of this delivery, as one object of one shape (absent fields are `undefined`). */
function update(
  message: Inbound,
  state: ReceiptState,
  attempt: number,
  error: ProblemDetails | undefined,
  result: string | undefined,
): ReceiptUpdate {
  return {
    group: message.group,
    source: message.event.source,
    messageId: message.event.id,
    state,
    attempt,
    topic: message.delivery.topic,
    type: message.event.type,
    error,
    result,
    sender: message.sender,
  };
}
