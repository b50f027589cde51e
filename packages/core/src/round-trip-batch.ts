/** The answer of one item of a batch: its value, or the error that item alone ran into. */
export type ItemOutcome<O> = { readonly ok: true; readonly value: O } | { readonly ok: false; readonly error: unknown };

interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for a remote store (PostgreSQL, Redis): the calls that arrive while no flush runs are collected until
 * `setImmediate` (after the I/O callbacks of this turn, so every request read in it joins) and go to
 * `flush` together; the calls that arrive while a flush runs wait for it and form the next batch. So
 * under load a batch carries everything that came during one round trip, and at most one flush runs
 * at a time. `flush` answers one outcome per item, in order; when it rejects, every item of the batch
 * rejects with that error.
 */
export class RoundTripBatch<I, O> {
  readonly #flush: (items: readonly I[]) => Promise<readonly ItemOutcome<O>[]>;
  #pending: Pending<I, O>[] = [];
  #scheduled = false;
  #flushing = false;

  constructor(flush: (items: readonly I[]) => Promise<readonly ItemOutcome<O>[]>) {
    this.#flush = flush;
  }

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing || this.#pending.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => void this.#run());
  }

  async #run(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    let outcomes: readonly ItemOutcome<O>[];
    this.#flushing = true;
    try {
      outcomes = await this.#flush(batch.map((pending) => pending.item));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
      return;
    } finally {
      this.#flushing = false;
      this.#schedule();
    }
    batch.forEach((pending, index) => {
      const outcome = outcomes[index];
      if (outcome === undefined) pending.reject(new Error('The batch answered fewer outcomes than items'));
      else if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  }
}
