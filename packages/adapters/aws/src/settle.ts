import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { SwitchboardError } from '@switchboard/core';
import { describeError, type ItemOutcome, idle, RoundTripBatch } from '@switchboard/core/kit';
import { isHandleLost, isTransient } from './errors.js';

/** `done`: SQS took it. `lost`: the receipt handle no longer names this receive (the message was received again, or is gone). */
export type SettleResult = 'done' | 'lost';

interface VisibilityItem {
  readonly handle: string;
  readonly seconds: number;
}

/** Entries per SQS batch call. */
const BATCH = 10;
/** Retries of entries SQS failed on its side (`SenderFault: false`) or of a call that failed in transit. */
const RETRY_DELAYS_MS = [50, 200, 800];

interface Entry {
  readonly Id: string;
  readonly ReceiptHandle: string;
  readonly VisibilityTimeout?: number;
}

interface BatchAnswer {
  readonly Successful?: readonly { readonly Id?: string | undefined }[] | undefined;
  readonly Failed?:
    | readonly {
        readonly Id?: string | undefined;
        readonly Code?: string | undefined;
        readonly SenderFault?: boolean | undefined;
        readonly Message?: string | undefined;
      }[]
    | undefined;
}

/**
 * The deletes (acks) and visibility changes (nacks, heartbeats, releases) of one queue, batched:
 * what arrives during one round trip goes out together, in `DeleteMessageBatch` and
 * `ChangeMessageVisibilityBatch` calls of up to 10 entries. Entry ids are positions (`0`..`9`),
 * never MessageIds, so two receives of one message in a batch cannot make the whole call fail with
 * `BatchEntryIdsNotDistinct`. The answer's `Failed` list is always read: entries SQS failed on its
 * side are retried, a handle that is no longer valid is reported `lost`, and anything else fails
 * that entry alone.
 */
export class QueueSettler {
  readonly #sqs: SQSClient;
  readonly #queueUrl: () => string;
  readonly #deletes: RoundTripBatch<string, SettleResult>;
  readonly #changes: RoundTripBatch<VisibilityItem, SettleResult>;

  constructor(sqs: SQSClient, queueUrl: () => string) {
    this.#sqs = sqs;
    this.#queueUrl = queueUrl;
    this.#deletes = new RoundTripBatch((handles) =>
      this.#run(
        handles.map((handle) => ({ ReceiptHandle: handle })),
        (Entries) => this.#sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.#queueUrl(), Entries: [...Entries] })),
        'delete',
      ),
    );
    this.#changes = new RoundTripBatch((items) =>
      this.#run(
        items.map((item) => ({ ReceiptHandle: item.handle, VisibilityTimeout: item.seconds })),
        (Entries) => this.#sqs.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: this.#queueUrl(), Entries: [...Entries] })),
        'change the visibility of',
      ),
    );
  }

  /** Deletes the message received with `handle` (an ack). */
  delete(handle: string): Promise<SettleResult> {
    return this.#deletes.add(handle);
  }

  /** Makes the message received with `handle` visible again in `seconds` (0: at once). */
  visibility(handle: string, seconds: number): Promise<SettleResult> {
    return this.#changes.add({ handle, seconds });
  }

  async #run(
    items: readonly Omit<Entry, 'Id'>[],
    call: (entries: readonly Entry[]) => Promise<BatchAnswer>,
    action: string,
  ): Promise<ItemOutcome<SettleResult>[]> {
    const outcomes: (ItemOutcome<SettleResult> | undefined)[] = new Array(items.length).fill(undefined);
    let pending = items.map((_, index) => index);
    for (let round = 0; pending.length > 0; round++) {
      const retry: number[] = [];
      const chunks: number[][] = [];
      for (let i = 0; i < pending.length; i += BATCH) chunks.push(pending.slice(i, i + BATCH));
      await Promise.all(
        chunks.map(async (chunk) => {
          const entries = chunk.map((index, position) => ({ Id: String(position), ...items[index]! }));
          let answer: BatchAnswer;
          try {
            answer = await call(entries);
          } catch (error) {
            if (isTransient(error) && round < RETRY_DELAYS_MS.length) retry.push(...chunk);
            else for (const index of chunk) outcomes[index] = { ok: false, error: failure(action, describeError(error), error) };
            return;
          }
          for (const entry of answer.Successful ?? []) {
            const index = chunk[Number(entry.Id)];
            if (index !== undefined) outcomes[index] = { ok: true, value: 'done' };
          }
          for (const entry of answer.Failed ?? []) {
            const index = chunk[Number(entry.Id)];
            if (index === undefined) continue;
            if (isHandleLost(entry.Code)) outcomes[index] = { ok: true, value: 'lost' };
            else if (entry.SenderFault !== true && round < RETRY_DELAYS_MS.length) retry.push(index);
            else outcomes[index] = { ok: false, error: failure(action, `${entry.Code}: ${entry.Message ?? ''}`) };
          }
          // An entry the answer did not mention at all is tried again, like a failure on SQS's side.
          for (const index of chunk) {
            if (outcomes[index] === undefined && !retry.includes(index)) {
              if (round < RETRY_DELAYS_MS.length) retry.push(index);
              else outcomes[index] = { ok: false, error: failure(action, 'no answer for the entry') };
            }
          }
        }),
      );
      pending = retry;
      if (pending.length > 0) await idle(RETRY_DELAYS_MS[round] ?? 1000);
    }
    return outcomes.map((outcome) => outcome ?? { ok: false, error: failure(action, 'no answer for the entry') });
  }
}

function failure(action: string, text: string, cause?: unknown): SwitchboardError {
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', {
    detail: `SQS: ${action} a message: ${text}`,
    ...(cause === undefined ? {} : { cause }),
  });
}
