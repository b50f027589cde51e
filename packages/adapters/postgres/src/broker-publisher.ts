import type { OutgoingMessage } from '@switchboard/core';

interface Pending {
  readonly messages: readonly OutgoingMessage[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export interface PublishPipelineOptions {
  /** Writes messages in one statement (one transaction). */
  readonly write: (messages: readonly OutgoingMessage[]) => Promise<void>;
  /** Statements in flight at once. */
  readonly concurrency: number;
  /** A statement takes further publishes while it stays under these (a single larger one goes alone). */
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** Whether a failed statement is worth running again publish by publish (the data of one was refused). */
  readonly isDataError: (error: unknown) => boolean;
}

/**
 * Group commit for publishes: the `publish` and `publishBatch` calls of one turn of the event loop,
 * and those that arrive while `concurrency` statements are in flight, go into one INSERT. Each
 * call stays all-or-nothing (it is never split), and calls keep their order inside a statement.
 */
export class PublishPipeline {
  readonly #options: PublishPipelineOptions;
  #queue: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: Array<() => void> = [];

  constructor(options: PublishPipelineOptions) {
    this.#options = options;
  }

  submit(messages: readonly OutgoingMessage[]): Promise<void> {
    let bytes = 0;
    for (const message of messages) bytes += message.body.byteLength;
    return new Promise((resolve, reject) => {
      this.#queue.push({ messages, bytes, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once every publish submitted so far has its outcome. */
  idle(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#queue.length === 0 && this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    if (this.#scheduled || this.#inFlight >= this.#options.concurrency || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#inFlight < this.#options.concurrency && this.#queue.length > 0) {
      const batch = this.#take();
      this.#inFlight += 1;
      void this.#run(batch).finally(() => {
        this.#inFlight -= 1;
        this.#schedule();
      });
    }
  }

  /** The longest head of the queue within the limits (at least one call). */
  #take(): Pending[] {
    const { maxMessages, maxBytes } = this.#options;
    let count = 0;
    let bytes = 0;
    let end = 0;
    while (end < this.#queue.length) {
      const next = this.#queue[end]!;
      if (end > 0 && (count + next.messages.length > maxMessages || bytes + next.bytes > maxBytes)) break;
      count += next.messages.length;
      bytes += next.bytes;
      end += 1;
    }
    return this.#queue.splice(0, end);
  }

  async #run(batch: readonly Pending[]): Promise<void> {
    try {
      await this.#options.write(batch.length === 1 ? batch[0]!.messages : batch.flatMap((pending) => pending.messages));
      for (const pending of batch) pending.resolve();
    } catch (error) {
      if (batch.length > 1 && this.#options.isDataError(error)) {
        // One call's data was refused: run them one by one, so only that call fails.
        for (const pending of batch) await this.#run([pending]);
        return;
      }
      for (const pending of batch) pending.reject(error);
    }
  }
}
