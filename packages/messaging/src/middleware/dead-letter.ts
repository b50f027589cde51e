import type {
  DeadLetter,
  DeadLetterAttempt,
  DeadLetterReason,
  DeadLetterStore,
  Delivery,
  NewDeadLetter,
  ProblemDetails,
} from '@switchboard/core';
import { Coalescer } from '../coalescer.js';
import type { Middleware } from '../pipeline.js';

export interface DeadLetterWriterOptions {
  /** `undefined`: dead-lettered messages are acknowledged and dropped (their receipt still says so). */
  readonly store: DeadLetterStore | undefined;
  /** Failed attempts remembered per message in this process, for the attempt history. Default 10 000 messages. */
  readonly maxTracked?: number;
  readonly clock?: () => number;
}

/** What a dead letter is filed under and carries. */
export interface DeadLetterSubject {
  readonly group: string;
  readonly delivery: Delivery;
  /** The CloudEvent's identity and type; absent for bytes that are not a CloudEvent. */
  readonly messageId: string;
  readonly source: string;
  readonly type?: string | undefined;
  readonly attempt: number;
}

/**
 * Writes dead letters: the exact headers and bytes received, the reason, and the history of
 * attempts this process saw fail (each with its problem document). Entries of deliveries settled
 * in the same tick go to the store in one `addBatch`. The entry is stored before the delivery is
 * acknowledged (and before the receipt says `dead-lettered`), so a crash in between only leads to
 * an idempotent second `add`. The consumer uses it directly for bytes that are not a CloudEvent;
 * the {@link deadLetter} middleware for everything else.
 */
export class DeadLetterWriter {
  readonly #history = new Map<string, DeadLetterAttempt[]>();
  readonly #maxTracked: number;
  readonly #clock: () => number;
  readonly #writer: Coalescer<NewDeadLetter, DeadLetter> | undefined;

  constructor(options: DeadLetterWriterOptions) {
    this.#maxTracked = options.maxTracked ?? 10_000;
    this.#clock = options.clock ?? Date.now;
    const store = options.store;
    this.#writer = store === undefined ? undefined : new Coalescer((entries) => store.addBatch(entries), { maxBatch: 500 });
  }

  /** A failed attempt that will be retried: kept for the history of a later dead letter. */
  failed(subject: DeadLetterSubject, error: ProblemDetails): void {
    const key = keyOf(subject);
    const attempts = this.#history.get(key) ?? [];
    attempts.push({ attempt: subject.attempt, at: this.#clock(), error });
    this.#history.delete(key);
    this.#history.set(key, attempts);
    if (this.#history.size > this.#maxTracked) this.#history.delete(this.#history.keys().next().value as string);
  }

  /** The message finally succeeded: its failures need not be remembered. */
  succeeded(subject: DeadLetterSubject): void {
    if (this.#history.size > 0) this.#history.delete(keyOf(subject));
  }

  /** Stores the dead letter (resolves once the store has it). */
  async write(subject: DeadLetterSubject, reason: DeadLetterReason, error: ProblemDetails): Promise<void> {
    const key = keyOf(subject);
    const attempts = this.#history.get(key) ?? [];
    this.#history.delete(key);
    attempts.push({ attempt: subject.attempt, at: this.#clock(), error });
    if (this.#writer === undefined) return;
    const delivery = subject.delivery;
    await this.#writer.push({
      messageId: subject.messageId,
      source: subject.source,
      topic: delivery.topic,
      group: subject.group,
      ...(subject.type === undefined ? {} : { type: subject.type }),
      headers: delivery.headers,
      body: delivery.body,
      ...(delivery.key === undefined ? {} : { key: delivery.key }),
      reason,
      ...(error.detail === undefined ? {} : { detail: String(error.detail) }),
      attempts,
    });
  }
}

function keyOf(subject: DeadLetterSubject): string {
  return `${subject.group}\u0000${subject.source}\u0000${subject.messageId}`;
}

/** The dead letter's subject for a decoded message. */
export function subjectOf(message: {
  readonly group: string;
  readonly delivery: Delivery;
  readonly event: { readonly id: string; readonly source: string; readonly type: string };
  readonly attempt: number;
}): DeadLetterSubject {
  const { event } = message;
  return {
    group: message.group,
    delivery: message.delivery,
    messageId: event.id,
    source: event.source,
    type: event.type,
    attempt: message.attempt,
  };
}

/** Writes a dead letter for every `dead-letter` outcome, and keeps the failed attempts of retried ones for its history. */
export function deadLetter(writer: DeadLetterWriter): Middleware {
  return (next) => async (message) => {
    const outcome = await next(message);
    switch (outcome.kind) {
      case 'ack':
        writer.succeeded(subjectOf(message));
        return outcome;
      case 'retry':
        if (outcome.counted && outcome.error !== undefined) writer.failed(subjectOf(message), outcome.error);
        return outcome;
      case 'dead-letter':
        await writer.write(subjectOf(message), outcome.reason, outcome.error);
        return outcome;
    }
  };
}
