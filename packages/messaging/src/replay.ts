import type { Broker, DeadLetterFilter, DeadLetterStore, ReceiptStore } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { newSecretId, randomHex } from '@switchboard/core/kit';

/** Which dead letters to replay: one entry, several, every pending entry matching a filter, or all. */
export type ReplaySelector =
  | { readonly id: string }
  | { readonly ids: readonly string[] }
  | (Omit<DeadLetterFilter, 'status'> & { readonly all?: true });

export interface ReplayOptions {
  /** Entries taken (and published) per round. Default 100. */
  readonly batchSize?: number;
  /** How long a taken entry stays reserved for this replayer. Default 60 000 ms. */
  readonly leaseMs?: number;
}

export interface ReplayResult {
  readonly replayed: number;
  /** Dead-letter entry ids that were republished. */
  readonly ids: readonly string[];
  readonly messageIds: readonly string[];
}

export interface ReplayDeps {
  readonly broker: Broker;
  readonly deadLetters: DeadLetterStore;
  readonly receipts: ReceiptStore | undefined;
}

/**
 * Republishes dead letters through the broker, byte for byte (same CloudEvent, so the same
 * MessageId; same headers, body and key, to the same topic) as a **new broker message**: its
 * transport id is `<MessageId>~r<replay>.<random>`, so an engine that deduplicates publishes by
 * transport id (JetStream's `Nats-Msg-Id`, SQS FIFO) does not drop the replay as a duplicate of the
 * original. `take` (reserve under a lease) → `reopen` the group's receipt → publish → `markReplayed`. On a publish failure the entries are released and the error is thrown. Other
 * groups of the topic receive the message again too; their inbox acknowledges it without running.
 */
export async function replayDeadLetters(deps: ReplayDeps, selector: ReplaySelector, options: ReplayOptions = {}): Promise<ReplayResult> {
  const owner = `replay-${newSecretId()}`;
  const leaseMs = options.leaseMs ?? 60_000;
  const limit = options.batchSize ?? 100;
  const single = 'id' in selector || 'ids' in selector;
  const ids: string[] = [];
  const messageIds: string[] = [];
  const filter = single ? { ids: 'id' in selector ? [selector.id] : [...selector.ids] } : withoutAll(selector);
  for (;;) {
    const taken = await deps.deadLetters.take({ ...filter, owner, leaseMs, limit });
    if (taken.length === 0) break;
    const takenIds = taken.map((entry) => entry.id);
    try {
      if (deps.receipts !== undefined) {
        await deps.receipts.reopen(taken.map((e) => ({ group: e.group, source: e.source, messageId: e.messageId })));
      }
      await deps.broker.publishBatch(
        taken.map((entry) => ({
          id: replayTransportId(entry.messageId, entry.replayCount + 1),
          topic: entry.topic,
          headers: entry.headers,
          body: entry.body,
          ...(entry.key === undefined ? {} : { key: entry.key }),
        })),
      );
    } catch (error) {
      await deps.deadLetters.release(takenIds, owner).catch(() => 0);
      throw error;
    }
    await deps.deadLetters.markReplayed(takenIds, owner);
    ids.push(...takenIds);
    messageIds.push(...taken.map((entry) => entry.messageId));
    if (single) break;
  }
  if (single && ids.length === 0) {
    throw new SwitchboardError('SB_NOT_FOUND', { detail: 'no pending dead letter with that id' });
  }
  return { replayed: ids.length, ids, messageIds };
}

function withoutAll(selector: Omit<DeadLetterFilter, 'status'> & { readonly all?: true }): Omit<DeadLetterFilter, 'status'> {
  const { all: _all, ...filter } = selector;
  return filter;
}

/** The transport id of a replay: the MessageId, the replay's number and a random part (two replayers never collide). */
export function replayTransportId(messageId: string, replay: number): string {
  return `${messageId}~r${replay}.${randomHex(4)}`;
}
