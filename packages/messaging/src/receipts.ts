import type { ProblemDetails, Receipt, ReceiptState, ReceiptStore } from '@switchboard/core';
import { isFinalReceiptState, SwitchboardError } from '@switchboard/core';

/** One consumer group's receipt, as the API and the HTTP route return it (times in RFC 3339). */
export interface GroupReceipt {
  readonly group: string;
  readonly state: ReceiptState;
  /** Handler runs started so far. */
  readonly attempts: number;
  readonly type?: string;
  readonly topic?: string;
  readonly receivedAt: string;
  readonly updatedAt: string;
  readonly processedAt?: string;
  /** The latest failure (RFC 9457 problem), on `failed` and `dead-lettered`. */
  readonly error?: ProblemDetails;
  /** JSON summary of what the handler returned (an operation's output), on `processed`. */
  readonly result?: string;
  /** The principal that delivered the event to this group (see `Receipt.sender`), when known. */
  readonly sender?: string;
}

/**
 * What the receiving service knows about one event — its identity is CloudEvents `source` + `id`
 * (the MessageId) — with one entry per consumer group that received it.
 */
export interface ReceiptDocument {
  readonly messageId: string;
  /** The CloudEvents `source` of the event (the sending service). */
  readonly source: string;
  /** True when every group reached `processed` or `dead-lettered`. */
  readonly done: boolean;
  readonly groups: readonly GroupReceipt[];
}

export function toGroupReceipt(receipt: Receipt): GroupReceipt {
  return {
    group: receipt.group,
    state: receipt.state,
    attempts: receipt.attempts,
    ...(receipt.type === undefined ? {} : { type: receipt.type }),
    ...(receipt.topic === undefined ? {} : { topic: receipt.topic }),
    receivedAt: new Date(receipt.receivedAt).toISOString(),
    updatedAt: new Date(receipt.updatedAt).toISOString(),
    ...(receipt.processedAt === undefined ? {} : { processedAt: new Date(receipt.processedAt).toISOString() }),
    ...(receipt.error === undefined ? {} : { error: receipt.error }),
    ...(receipt.result === undefined ? {} : { result: receipt.result }),
    ...(receipt.sender === undefined ? {} : { sender: receipt.sender }),
  };
}

export interface ReceiptQuery {
  /**
   * The CloudEvents `source` of the event: with the MessageId, its identity. Pass it whenever it is
   * known (a sender knows its own): two sources may use the same id. Without it the answer is the
   * event of the one source that used the MessageId, and `SB_CONFLICT` when several did.
   */
  readonly source?: string;
  /**
   * Only the receipts this principal delivered (`Receipt.sender`): what the others are is not said,
   * not even that they exist. The HTTP route passes the reader when the service has authentication.
   */
  readonly visibleTo?: string;
}

/** The receiving side's receipts API. */
export interface Receipts {
  /**
   * Every group's receipt for the event, or `undefined` when no group ever received it. Without
   * `source`, throws `SB_CONFLICT` when more than one source used the MessageId.
   */
  get(messageId: string, options?: ReceiptQuery): Promise<ReceiptDocument | undefined>;
  /**
   * `get`, waiting up to `timeoutMs` for the event to arrive and reach a final state in every group
   * (and `group`, when given).
   */
  wait(
    messageId: string,
    options?: ReceiptQuery & { readonly timeoutMs?: number; readonly group?: string; readonly signal?: AbortSignal },
  ): Promise<ReceiptDocument | undefined>;
}

export function isSettled(document: ReceiptDocument | undefined, group?: string): boolean {
  if (document === undefined || !document.done) return false;
  return group === undefined || document.groups.some((g) => g.group === group);
}

export function createReceipts(store: ReceiptStore): Receipts {
  const get = async (messageId: string, options: ReceiptQuery = {}): Promise<ReceiptDocument | undefined> => {
    const stored = await store.getAll(messageId, options.source);
    const reader = options.visibleTo;
    const all = reader === undefined ? stored : stored.filter((receipt) => receipt.sender === reader);
    const first = all[0];
    if (first === undefined) return undefined;
    // Without a source, the store answers every source's receipts, ordered by source.
    if (options.source === undefined && all[all.length - 1]?.source !== first.source) {
      // The other sources are not named: receipts are their senders' business.
      throw new SwitchboardError('SB_CONFLICT', {
        detail: `more than one source sent MessageId ${messageId}; pass the source (?source=) to say which event`,
      });
    }
    return { messageId, source: first.source, done: all.every((r) => isFinalReceiptState(r.state)), groups: all.map(toGroupReceipt) };
  };
  return {
    get,
    async wait(messageId, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      const query = {
        ...(options.source === undefined ? {} : { source: options.source }),
        ...(options.visibleTo === undefined ? {} : { visibleTo: options.visibleTo }),
      };
      let interval = 10;
      for (;;) {
        const document = await get(messageId, query);
        if (isSettled(document, options.group) || Date.now() >= deadline || options.signal?.aborted) return document;
        await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(1, deadline - Date.now()))));
        interval = Math.min(interval * 2, 250);
      }
    },
  };
}
