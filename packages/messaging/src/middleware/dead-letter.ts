import type { DeadLetter, DeadLetterAttempt, DeadLetterStore, NewDeadLetter } from '@switchboard/core';
import { Coalescer } from '../coalescer.js';
import type { Middleware } from '../pipeline.js';

export interface DeadLetterMiddlewareOptions {
  /** `undefined`: dead-lettered messages are acknowledged and dropped (their receipt still says so). */
  readonly store: DeadLetterStore | undefined;
  readonly binding: { readonly prefix: string };
  /** Failed attempts remembered per message in this process, for the attempt history. Default 10 000 messages. */
  readonly maxTracked?: number;
  readonly clock?: () => number;
}

/**
 * Writes dead letters: the exact headers and bytes received, the reason, and the history of
 * attempts this process saw fail (each with its problem document). Entries of deliveries settled
 * in the same tick go to the store in one `addBatch`. The entry is stored before the delivery is
 * acknowledged, so a crash in between only leads to an idempotent second `add`.
 */
export function deadLetter(options: DeadLetterMiddlewareOptions): Middleware {
  const history = new Map<string, DeadLetterAttempt[]>();
  const maxTracked = options.maxTracked ?? 10_000;
  const clock = options.clock ?? Date.now;
  const store = options.store;
  const writer =
    store === undefined ? undefined : new Coalescer<NewDeadLetter, DeadLetter>((entries) => store.addBatch(entries), { maxBatch: 500 });
  const typeHeader = `${options.binding.prefix}type`;
  return (next) => async (message) => {
    const outcome = await next(message);
    if (outcome.kind === 'ack') {
      if (history.size > 0) history.delete(`${message.group}\u0000${message.delivery.id}`);
      return outcome;
    }
    const key = `${message.group}\u0000${message.delivery.id}`;
    if (outcome.kind === 'retry') {
      if (outcome.counted && outcome.error !== undefined) {
        const attempts = history.get(key) ?? [];
        attempts.push({ attempt: message.attempt, at: clock(), error: outcome.error });
        history.delete(key);
        history.set(key, attempts);
        if (history.size > maxTracked) history.delete(history.keys().next().value as string);
      }
      return outcome;
    }
    const attempts = history.get(key) ?? [];
    history.delete(key);
    attempts.push({ attempt: message.attempt, at: clock(), error: outcome.error });
    if (writer !== undefined) {
      const delivery = message.delivery;
      const type = message.event?.type ?? delivery.headers[typeHeader];
      await writer.push({
        messageId: delivery.id,
        topic: delivery.topic,
        group: message.group,
        ...(type === undefined ? {} : { type }),
        headers: delivery.headers,
        body: delivery.body,
        ...(delivery.key === undefined ? {} : { key: delivery.key }),
        reason: outcome.reason,
        ...(outcome.error.detail === undefined ? {} : { detail: String(outcome.error.detail) }),
        attempts,
      });
    }
    return outcome;
  };
}
