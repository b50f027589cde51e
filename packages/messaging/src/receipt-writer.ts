import type { ReceiptClaim, ReceiptClaimResult, ReceiptStore, ReceiptUpdate, RecordOutcome } from '@switchboard/core';
import { isSwitchboardError } from '@switchboard/core';

interface Pending<I, O> {
  items: I[];
  resolves: ((value: O) => void)[];
  rejects: ((error: unknown) => void)[];
}

function pending<I, O>(): Pending<I, O> {
  return { items: [], resolves: [], rejects: [] };
}

/**
 * The inbox's writes to the receipt store, batched. Claims made in one tick go out at the end of
 * that tick as one `claimBatch` (a handler waits on its claim). Receipt updates made in one tick go
 * out as one `record`; with a store that has `recordAndClaim` they wait up to one event-loop turn,
 * so that they travel with the next tick's claims in one transaction: a steady stream of messages
 * then costs one receipt-store transaction per batch instead of two. While one write is running the
 * next one collects, so a slow store gets bigger batches instead of more round trips.
 *
 * A store refuses a batch as a whole, writing none of it, when one item holds a value it cannot hold
 * (`SB_STORE_REFUSED`). The writer then writes that batch's items one at a time, in order, so only
 * the messages whose own values were refused fail; the others of the batch are not dead-lettered for
 * a neighbour's fault.
 */
export class ReceiptWriter {
  readonly #store: ReceiptStore;
  readonly #maxBatch: number;
  readonly #combined: boolean;
  #claims = pending<ReceiptClaim, ReceiptClaimResult>();
  #records = pending<ReceiptUpdate, RecordOutcome>();
  #tickScheduled = false;
  #turnScheduled = false;
  #running = false;

  constructor(store: ReceiptStore, options: { maxBatch?: number } = {}) {
    this.#store = store;
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#combined = typeof store.recordAndClaim === 'function';
  }

  claim(request: ReceiptClaim): Promise<ReceiptClaimResult> {
    return new Promise((resolve, reject) => {
      const claims = this.#claims;
      claims.items.push(request);
      claims.resolves.push(resolve);
      claims.rejects.push(reject);
      this.#scheduleTick();
    });
  }

  record(update: ReceiptUpdate): Promise<RecordOutcome> {
    return new Promise((resolve, reject) => {
      const records = this.#records;
      records.items.push(update);
      records.resolves.push(resolve);
      records.rejects.push(reject);
      if (!this.#combined) this.#scheduleTick();
      else if (!this.#turnScheduled) {
        this.#turnScheduled = true;
        setImmediate(this.#onTurn);
      }
    });
  }

  #scheduleTick(): void {
    if (this.#tickScheduled) return;
    this.#tickScheduled = true;
    queueMicrotask(this.#onTick);
  }

  readonly #onTick = (): void => {
    this.#tickScheduled = false;
    this.#flush();
  };

  readonly #onTurn = (): void => {
    this.#turnScheduled = false;
    this.#flush();
  };

  #flush(): void {
    if (this.#running) return;
    const claims = take(this.#claims, this.#maxBatch);
    const records = take(this.#records, this.#maxBatch);
    if (claims.items.length === 0 && records.items.length === 0) return;
    this.#running = true;
    let write: Promise<{ outcomes: readonly RecordOutcome[]; claims: readonly ReceiptClaimResult[] }>;
    try {
      write = this.#write(records.items, claims.items);
    } catch (error) {
      write = Promise.reject(error);
    }
    write.then(
      (result) => {
        settle(records, result.outcomes);
        settle(claims, result.claims);
        this.#done();
      },
      (error: unknown) => {
        if (isSwitchboardError(error, 'SB_STORE_REFUSED') && records.items.length + claims.items.length > 1) {
          void this.#oneByOne(records, claims).finally(() => this.#done());
          return;
        }
        for (const reject of records.rejects) reject(error);
        for (const reject of claims.rejects) reject(error);
        this.#done();
      },
    );
  }

  async #write(
    updates: ReceiptUpdate[],
    requests: ReceiptClaim[],
  ): Promise<{ outcomes: readonly RecordOutcome[]; claims: readonly ReceiptClaimResult[] }> {
    const store = this.#store;
    if (updates.length > 0 && requests.length > 0 && store.recordAndClaim !== undefined) return store.recordAndClaim(updates, requests);
    // Updates first: a `processed` mark decides a claim of the same MessageId in the same batch.
    const outcomes = updates.length === 0 ? [] : await store.record(updates);
    const claims = requests.length === 0 ? [] : await store.claimBatch(requests);
    return { outcomes, claims };
  }

  /** A refused batch again, item by item and in the same order (updates, then claims). */
  async #oneByOne(records: Pending<ReceiptUpdate, RecordOutcome>, claims: Pending<ReceiptClaim, ReceiptClaimResult>): Promise<void> {
    for (let i = 0; i < records.items.length; i++) {
      try {
        const [outcome] = await this.#store.record([records.items[i] as ReceiptUpdate]);
        records.resolves[i]!(outcome as RecordOutcome);
      } catch (error) {
        records.rejects[i]!(error);
      }
    }
    for (let i = 0; i < claims.items.length; i++) {
      try {
        const [result] = await this.#store.claimBatch([claims.items[i] as ReceiptClaim]);
        claims.resolves[i]!(result as ReceiptClaimResult);
      } catch (error) {
        claims.rejects[i]!(error);
      }
    }
  }

  #done(): void {
    this.#running = false;
    if (this.#claims.items.length > 0) this.#flush();
    else if (this.#records.items.length > 0 && !this.#combined) this.#flush();
    else if (this.#records.items.length > 0 && !this.#turnScheduled) {
      this.#turnScheduled = true;
      setImmediate(this.#onTurn);
    }
  }
}

function take<I, O>(from: Pending<I, O>, max: number): Pending<I, O> {
  if (from.items.length <= max) {
    const all = { items: from.items, resolves: from.resolves, rejects: from.rejects };
    from.items = [];
    from.resolves = [];
    from.rejects = [];
    return all;
  }
  return { items: from.items.splice(0, max), resolves: from.resolves.splice(0, max), rejects: from.rejects.splice(0, max) };
}

function settle<I, O>(batch: Pending<I, O>, results: readonly O[]): void {
  for (let i = 0; i < batch.resolves.length; i++) batch.resolves[i]!(results[i] as O);
}
