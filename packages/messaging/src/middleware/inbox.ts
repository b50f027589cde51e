import type { CloudEventsBinding, ProblemDetails, ReceiptState, ReceiptStore, ReceiptUpdate } from '@switchboard/core';
import { percentDecodeHeaderValue } from '@switchboard/core/kit';
import type { Inbound, Middleware, Outcome } from '../pipeline.js';
import { ReceiptWriter } from '../receipt-writer.js';

export interface InboxMiddlewareOptions {
  readonly store: ReceiptStore;
  readonly binding: CloudEventsBinding;
  /** Claim before running (deduplication). `false`: receipts are recorded, duplicates are not stopped. */
  readonly dedupe: boolean;
  /** Identifies this consumer in claim leases. */
  readonly owner: string;
  /** How long a claim holds: longer than the handler's time limit. */
  readonly leaseMs: number;
}

/**
 * The inbox and the receipts. Before the handler: `claim` the (group, MessageId) — a message
 * already processed by this group is acknowledged without running, one held by another worker is
 * redelivered later. After it: record `processed` (with a result summary), `failed` (with the
 * problem and attempt) or `dead-lettered`. Claims and records are batched by `ReceiptWriter`: one
 * `claimBatch` / `record` per tick, or one `recordAndClaim` where the store has it.
 */
export function inbox(options: InboxMiddlewareOptions): Middleware {
  const { store, binding, owner, leaseMs } = options;
  const writer = new ReceiptWriter(store);
  const typeHeader = `${binding.prefix}type`;
  const sourceHeader = `${binding.prefix}source`;
  const header = (message: Inbound, name: string): string | undefined => {
    const raw = message.delivery.headers[name];
    if (raw === undefined || binding.values !== 'percent') return raw;
    return percentDecodeHeaderValue(raw) ?? raw;
  };
  return (next) => async (message) => {
    const delivery = message.delivery;
    const type = header(message, typeHeader);
    const source = header(message, sourceHeader);
    let run = message.attempt;
    if (options.dedupe) {
      const claim = await writer.claim({
        group: message.group,
        messageId: delivery.id,
        owner,
        leaseMs,
        topic: delivery.topic,
        type,
        source,
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
      await writer.record(update(message, type, source, 'processing', run, undefined, undefined));
    }
    const outcome: Outcome = await next(message);
    switch (outcome.kind) {
      case 'ack':
        await writer.record(update(message, type, source, 'processed', run, undefined, outcome.result));
        break;
      case 'retry':
        if (outcome.counted) await writer.record(update(message, type, source, 'failed', run, outcome.error, undefined));
        break;
      case 'dead-letter':
        await writer.record(update(message, type, source, 'dead-lettered', run, outcome.error, undefined));
        break;
    }
    return outcome;
  };
}

/** One receipt update of this delivery, as one object of one shape (absent fields are `undefined`). */
function update(
  message: Inbound,
  type: string | undefined,
  source: string | undefined,
  state: ReceiptState,
  attempt: number,
  error: ProblemDetails | undefined,
  result: string | undefined,
): ReceiptUpdate {
  return {
    group: message.group,
    messageId: message.delivery.id,
    state,
    attempt,
    topic: message.delivery.topic,
    type,
    source,
    error,
    result,
  };
}
