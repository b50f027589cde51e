import type { CloudEventsBinding, ReceiptClaim, ReceiptClaimResult, ReceiptStore, ReceiptUpdate, RecordOutcome } from '@switchboard/core';
import { percentDecodeHeaderValue } from '@switchboard/core';
import { Coalescer } from '../coalescer.js';
import type { Inbound, Middleware, Outcome } from '../pipeline.js';

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
 * problem and attempt) or `dead-lettered`. Claims and records of deliveries arriving in the same
 * tick are coalesced into one `claimBatch` / `record` call each.
 */
export function inbox(options: InboxMiddlewareOptions): Middleware {
  const { store, binding, owner, leaseMs } = options;
  const claims = new Coalescer<ReceiptClaim, ReceiptClaimResult>((requests) => store.claimBatch(requests));
  const records = new Coalescer<ReceiptUpdate, RecordOutcome>((updates) => store.record(updates));
  const typeHeader = `${binding.prefix}type`;
  const sourceHeader = `${binding.prefix}source`;
  const header = (message: Inbound, name: string): string | undefined => {
    const raw = message.delivery.headers[name];
    if (raw === undefined || !binding.percentEncode) return raw;
    return percentDecodeHeaderValue(raw) ?? raw;
  };
  return (next) => async (message) => {
    const delivery = message.delivery;
    const type = header(message, typeHeader);
    const source = header(message, sourceHeader);
    const described = {
      group: message.group,
      messageId: delivery.id,
      topic: delivery.topic,
      ...(type === undefined ? {} : { type }),
      ...(source === undefined ? {} : { source }),
    };
    let run = message.attempt;
    if (options.dedupe) {
      const claim = await claims.push({ ...described, owner, leaseMs });
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
      await records.push({ ...described, state: 'processing', attempt: run });
    }
    const outcome: Outcome = await next(message);
    switch (outcome.kind) {
      case 'ack':
        await records.push({
          ...described,
          state: 'processed',
          attempt: run,
          ...(outcome.result === undefined ? {} : { result: outcome.result }),
        });
        break;
      case 'retry':
        if (outcome.counted)
          await records.push({
            ...described,
            state: 'failed',
            attempt: run,
            ...(outcome.error === undefined ? {} : { error: outcome.error }),
          });
        break;
      case 'dead-letter':
        await records.push({ ...described, state: 'dead-lettered', attempt: run, error: outcome.error });
        break;
    }
    return outcome;
  };
}
