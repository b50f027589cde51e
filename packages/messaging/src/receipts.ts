import type { ProblemDetails, Receipt, ReceiptState, ReceiptStore } from '@switchboard/core';
import { isFinalReceiptState } from '@switchboard/core';

/** One consumer group's receipt, as the API and the HTTP route return it (times in RFC 3339). */
export interface GroupReceipt {
  readonly group: string;
  readonly state: ReceiptState;
  /** Handler runs started so far. */
  readonly attempts: number;
  readonly type?: string;
  readonly source?: string;
  readonly topic?: string;
  readonly receivedAt: string;
  readonly updatedAt: string;
  readonly processedAt?: string;
  /** The latest failure (RFC 9457 problem), on `failed` and `dead-lettered`. */
  readonly error?: ProblemDetails;
  /** JSON summary of what the handler returned (an operation's output), on `processed`. */
  readonly result?: string;
}

/** What the receiving service knows about one MessageId: one entry per consumer group that received it. */
export interface ReceiptDocument {
  readonly messageId: string;
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
    ...(receipt.source === undefined ? {} : { source: receipt.source }),
    ...(receipt.topic === undefined ? {} : { topic: receipt.topic }),
    receivedAt: new Date(receipt.receivedAt).toISOString(),
    updatedAt: new Date(receipt.updatedAt).toISOString(),
    ...(receipt.processedAt === undefined ? {} : { processedAt: new Date(receipt.processedAt).toISOString() }),
    ...(receipt.error === undefined ? {} : { error: receipt.error }),
    ...(receipt.result === undefined ? {} : { result: receipt.result }),
  };
}

/** The receiving side's receipts API. */
export interface Receipts {
  /** Every group's receipt for the MessageId, or `undefined` when no group ever received it. */
  get(messageId: string): Promise<ReceiptDocument | undefined>;
  /** `get`, waiting up to `timeoutMs` for the MessageId to arrive and reach a final state in every group (and `group`, when given). */
  wait(
    messageId: string,
    options?: { readonly timeoutMs?: number; readonly group?: string; readonly signal?: AbortSignal },
  ): Promise<ReceiptDocument | undefined>;
}

export function isSettled(document: ReceiptDocument | undefined, group?: string): boolean {
  if (document === undefined || !document.done) return false;
  return group === undefined || document.groups.some((g) => g.group === group);
}

export function createReceipts(store: ReceiptStore): Receipts {
  const get = async (messageId: string): Promise<ReceiptDocument | undefined> => {
    const all = await store.getAll(messageId);
    if (all.length === 0) return undefined;
    return { messageId, done: all.every((r) => isFinalReceiptState(r.state)), groups: all.map(toGroupReceipt) };
  };
  return {
    get,
    async wait(messageId, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 10_000);
      let interval = 10;
      for (;;) {
        const document = await get(messageId);
        if (isSettled(document, options.group) || Date.now() >= deadline || options.signal?.aborted) return document;
        await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(1, deadline - Date.now()))));
        interval = Math.min(interval * 2, 250);
      }
    },
  };
}
