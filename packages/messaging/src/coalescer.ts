/**
 * Coalesces calls made in the same tick into one batched call: every `push` made before the
 * microtask queue drains lands in one `run(items)`. While a batch is being written the next one
 * keeps collecting, so a slow store gets bigger batches instead of more round trips.
 */
export class Coalescer<I, O> {
  readonly #run: (items: I[]) => Promise<readonly O[]>;
  readonly #maxBatch: number;
  #items: I[] = [];
  #waiters: { resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  #scheduled = false;
  #running = 0;
  readonly #maxConcurrent: number;
  #idle: (() => void)[] = [];

  constructor(run: (items: I[]) => Promise<readonly O[]>, options: { maxBatch?: number; maxConcurrent?: number } = {}) {
    this.#run = run;
    this.#maxBatch = options.maxBatch ?? 1000;
    this.#maxConcurrent = options.maxConcurrent ?? 1;
  }

  push(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#items.push(item);
      this.#waiters.push({ resolve, reject });
      if (this.#items.length >= this.#maxBatch && this.#running < this.#maxConcurrent) {
        this.#flush();
        return;
      }
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(this.#tick);
      }
    });
  }

  /** Resolves once everything pushed so far has been written. */
  async drain(): Promise<void> {
    while (this.#items.length > 0 || this.#running > 0) {
      await new Promise<void>((resolve) => {
        this.#idle.push(resolve);
        if (this.#running === 0) this.#flush();
      });
    }
  }

  readonly #tick = (): void => {
    this.#scheduled = false;
    if (this.#running < this.#maxConcurrent) this.#flush();
  };

  #flush(): void {
    if (this.#items.length === 0) {
      this.#wakeIdle();
      return;
    }
    const items = this.#items.splice(0, this.#maxBatch);
    const waiters = this.#waiters.splice(0, items.length);
    this.#running += 1;
    let result: Promise<readonly O[]>;
    try {
      result = this.#run(items);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (outputs) => {
        for (let i = 0; i < waiters.length; i++) waiters[i]!.resolve(outputs[i] as O);
        this.#done();
      },
      (error: unknown) => {
        for (const waiter of waiters) waiter.reject(error);
        this.#done();
      },
    );
  }

  #done(): void {
    this.#running -= 1;
    if (this.#items.length > 0) this.#flush();
    else if (this.#running === 0) this.#wakeIdle();
  }

  #wakeIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
