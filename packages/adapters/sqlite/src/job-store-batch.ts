/** The answer of one item of a batch: its value, or the error that item alone ran into. */
import type { ItemOutcome } from '@switchboard/core/kit';

export type { ItemOutcome };

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: collects the items that arrive in one turn of the event loop and hands them to
 * `flush` together (one transaction, one commit) on `setImmediate` — after the I/O callbacks of
 * this turn, so every request read in it joins. With `eager`, the first item of a turn is flushed
 * at once (a transaction of its own), so a lone caller waits for no later turn; only the items
 * after it in the same turn wait for the batch.
 * `flush` answers one outcome per item, in order; when it throws (the transaction failed), every
 * item of its batch rejects with that error.
 */
export class TickBatch<I, O> {
  readonly #flush: (items: readonly I[]) => readonly ItemOutcome<O>[];
  #pending: Pending<I, O>[] = [];
  /** A batch is due on `setImmediate`: set by the first item of a turn, so the later ones join it. */
  #scheduled = false;

  readonly #eager: boolean;

  constructor(flush: (items: readonly I[]) => readonly ItemOutcome<O>[], options: { readonly eager?: boolean } = {}) {
    this.#flush = flush;
    this.#eager = options.eager ?? false;
  }

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const pending = { item, resolve, reject };
      if (this.#scheduled) {
        this.#pending.push(pending);
        return;
      }
      this.#scheduled = true;
      setImmediate(() => this.#run());
      if (this.#eager) this.#flushBatch([pending]);
      else this.#pending.push(pending);
    });
  }

  #run(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    this.#flushBatch(batch);
  }

  #flushBatch(batch: readonly Pending<I, O>[]): void {
    let outcomes: readonly ItemOutcome<O>[];
    try {
      outcomes = this.#flush(batch.map((pending) => pending.item));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    }
    batch.forEach((pending, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) pending.reject(new Error('The batch answered fewer outcomes than items'));
      else if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  }
}
