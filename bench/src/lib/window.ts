/** Bounds how many asynchronous operations run at once: `acquire` waits while `limit` are running. */
export class Window {
  readonly #limit: number;
  #running = 0;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  async acquire(): Promise<void> {
    while (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    this.#running += 1;
  }

  release(): void {
    this.#running -= 1;
    this.#waiters.shift()?.();
    if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves once nothing is running. */
  async drained(): Promise<void> {
    if (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }
}

/** Runs `run` for every item, at most `limit` at once; resolves when all settled, rejects with the first failure. */
export async function forEachWindowed<T>(items: Iterable<T>, limit: number, run: (item: T) => Promise<unknown>): Promise<void> {
  const window = new Window(limit);
  let failure: unknown;
  for (const item of items) {
    await window.acquire();
    run(item).then(
      () => window.release(),
      (error: unknown) => {
        failure ??= error;
        window.release();
      },
    );
  }
  await window.drained();
  if (failure !== undefined) throw failure;
}
