import {
  type IdempotencyBegin,
  type IdempotencyBeginResult,
  type IdempotencyBounds,
  type IdempotencyLock,
  type IdempotencyStore,
  type StoredResponse,
  SwitchboardError,
} from '@switchboard/core';
import { IDEMPOTENCY_FULL_RETRY_AFTER_MS, idempotencyRecordBytes, newSecretId, resolveIdempotencyBounds } from '@switchboard/core/kit';

export interface MemoryIdempotencyStoreOptions extends IdempotencyBounds {
  /** Clock in epoch ms; tests pass a controllable one. Default `Date.now`. */
  readonly clock?: () => number;
  /** How often expired records are swept. Default 60 000 ms. The timer does not keep the process alive. */
  readonly sweepIntervalMs?: number;
}

interface MemoryRecord {
  readonly id: string;
  readonly hash: string;
  token: string;
  response: StoredResponse | undefined;
  expiresAt: number;
  bytes: number;
}

const MISMATCH: IdempotencyBeginResult = { status: 'mismatch' };
const IN_PROGRESS: IdempotencyBeginResult = { status: 'in-progress' };
const SWEEP_WHEN_FULL_MS = 1_000;
const FULL: IdempotencyBeginResult = { status: 'full', retryAfterMs: IDEMPOTENCY_FULL_RETRY_AFTER_MS };

/**
 * `IdempotencyStore` for one process: the reference implementation and the default of
 * `createHttpService`. Bounded by `maxEntries` and `maxBytes`; completed records are dropped oldest
 * first to make room, records in progress never (a new key is refused with `full` instead). Every
 * method runs synchronously inside one call, so `begin` is atomic.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  /** Every live record, by `(scope, key)`. */
  readonly #records = new Map<string, MemoryRecord>();
  /** The completed ones, in completion order: the eviction queue. */
  readonly #completed = new Map<string, MemoryRecord>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #clock: () => number;
  readonly #sweeper: NodeJS.Timeout;
  #bytes = 0;
  #sweptAt = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    const bounds = resolveIdempotencyBounds(options);
    this.#maxEntries = bounds.maxEntries;
    this.#maxBytes = bounds.maxBytes;
    this.#clock = options.clock ?? Date.now;
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.#sweeper.unref();
  }

  /** Live records (in progress or completed). */
  get size(): number {
    return this.#records.size;
  }

  /** Bytes the live records count against `maxBytes`. */
  get bytes(): number {
    return this.#bytes;
  }

  async begin(request: IdempotencyBegin): Promise<IdempotencyBeginResult> {
    this.#open();
    const id = recordId(request.scope, request.key);
    const now = this.#clock();
    const existing = this.#records.get(id);
    if (existing !== undefined && existing.expiresAt > now) {
      if (existing.hash !== request.requestHash) return MISMATCH;
      if (existing.response === undefined) return IN_PROGRESS;
      return { status: 'replay', response: existing.response };
    }
    if (existing !== undefined) this.#drop(existing);
    const bytes = idempotencyRecordBytes(request.scope, request.key, request.requestHash);
    if (!this.#makeRoom(bytes, now)) return FULL;
    const token = newSecretId();
    const record: MemoryRecord = { id, hash: request.requestHash, token, response: undefined, expiresAt: now + request.lockMs, bytes };
    this.#records.set(id, record);
    this.#bytes += bytes;
    return { status: 'started', token };
  }

  async complete(lock: IdempotencyLock, response: StoredResponse, ttlMs: number): Promise<void> {
    this.#open();
    const record = this.#owned(lock);
    if (record === undefined) return;
    const bytes = idempotencyRecordBytes(lock.scope, lock.key, record.hash, response);
    this.#drop(record);
    if (bytes > this.#maxBytes) return; // Larger than the whole store: not kept.
    const now = this.#clock();
    if (!this.#makeRoom(bytes, now)) return;
    const completed: MemoryRecord = { ...record, response, expiresAt: now + ttlMs, bytes };
    this.#records.set(record.id, completed);
    this.#completed.set(record.id, completed);
    this.#bytes += bytes;
  }

  async abandon(lock: IdempotencyLock): Promise<void> {
    this.#open();
    const record = this.#owned(lock);
    if (record !== undefined) this.#drop(record);
  }

  /** Drops expired records. */
  sweep(): void {
    const now = this.#clock();
    for (const record of this.#records.values()) if (record.expiresAt <= now) this.#drop(record);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#records.clear();
    this.#completed.clear();
    this.#bytes = 0;
  }

  /** The record `lock` names, if it is still in progress under that token. */
  #owned(lock: IdempotencyLock): MemoryRecord | undefined {
    const record = this.#records.get(recordId(lock.scope, lock.key));
    return record !== undefined && record.response === undefined && record.token === lock.token ? record : undefined;
  }

  /**
   * Frees room for one more record of `bytes`: the oldest completed records first, then (at most
   * once a second, as it visits every record) the in-progress ones whose lock expired.
   */
  #makeRoom(bytes: number, now: number): boolean {
    const fits = () => this.#records.size < this.#maxEntries && this.#bytes + bytes <= this.#maxBytes;
    if (fits()) return true;
    for (const record of this.#completed.values()) {
      this.#drop(record);
      if (fits()) return true;
    }
    if (now - this.#sweptAt >= SWEEP_WHEN_FULL_MS) {
      this.#sweptAt = now;
      this.sweep();
    }
    return fits();
  }

  #drop(record: MemoryRecord): void {
    if (this.#records.get(record.id) !== record) return;
    this.#records.delete(record.id);
    this.#completed.delete(record.id);
    this.#bytes -= record.bytes;
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'The idempotency store is closed' });
  }
}

function recordId(scope: string, key: string): string {
  return `${scope}\u0000${key}`;
}

export function createMemoryIdempotencyStore(options?: MemoryIdempotencyStoreOptions): MemoryIdempotencyStore {
  return new MemoryIdempotencyStore(options);
}
