import type { IdempotencyBegin, IdempotencyBeginResult, IdempotencyStore, StoredResponse } from './store.js';

export interface MemoryIdempotencyStoreOptions {
  /** Most records kept; the oldest are dropped beyond it. Default 100 000. */
  readonly maxEntries?: number;
  /** How often expired records are swept. Default 60 000 ms. The timer does not keep the process alive. */
  readonly sweepIntervalMs?: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

interface MemoryRecord {
  readonly hash: string;
  response: StoredResponse | undefined;
  expiresAt: number;
}

const STARTED: IdempotencyBeginResult = { status: 'started' };
const MISMATCH: IdempotencyBeginResult = { status: 'mismatch' };
const IN_PROGRESS: IdempotencyBeginResult = { status: 'in-progress' };

/** One process only: the reference implementation and the default of `createHttpService`. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly #records = new Map<string, MemoryRecord>();
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.#sweeper.unref();
  }

  /** Number of live records (in progress or completed). */
  get size(): number {
    return this.#records.size;
  }

  async begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult> {
    const id = recordId(request.scope, request.key);
    const now = this.#now();
    const existing = this.#records.get(id);
    if (existing !== undefined && existing.expiresAt > now) {
      if (existing.hash !== request.requestHash) return MISMATCH;
      if (existing.response === undefined) return IN_PROGRESS;
      return { status: 'replay', response: existing.response };
    }
    if (existing !== undefined) this.#records.delete(id);
    this.#records.set(id, { hash: request.requestHash, response: undefined, expiresAt: now + request.lockMs });
    if (this.#records.size > this.#maxEntries) {
      const oldest = this.#records.keys().next();
      if (oldest.done !== true) this.#records.delete(oldest.value);
    }
    return STARTED;
  }

  async complete(scope: string, key: string, response: StoredResponse, ttlMs: number): Promise<void> {
    const record = this.#records.get(recordId(scope, key));
    if (record === undefined) return;
    record.response = response;
    record.expiresAt = this.#now() + ttlMs;
  }

  async abandon(scope: string, key: string): Promise<void> {
    const id = recordId(scope, key);
    const record = this.#records.get(id);
    if (record !== undefined && record.response === undefined) this.#records.delete(id);
  }

  /** Drops expired records. */
  sweep(): void {
    const now = this.#now();
    for (const [id, record] of this.#records) {
      if (record.expiresAt <= now) this.#records.delete(id);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#records.clear();
  }
}

function recordId(scope: string, key: string): string {
  return `${scope}\u0000${key}`;
}

export function createMemoryIdempotencyStore(options?: MemoryIdempotencyStoreOptions): MemoryIdempotencyStore {
  return new MemoryIdempotencyStore(options);
}
