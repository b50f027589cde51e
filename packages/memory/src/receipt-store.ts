import {
  type ListPage,
  type Receipt,
  type ReceiptClaim,
  type ReceiptClaimResult,
  type ReceiptKey,
  type ReceiptListFilter,
  type ReceiptPurgeOptions,
  type ReceiptStore,
  type ReceiptUpdate,
  type RecordOutcome,
  SwitchboardError,
} from '@switchboard/core';
import {
  assertStorableIdentity,
  decideClaim,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  mergeReceipt,
  reopenReceipt,
} from '@switchboard/core/kit';

export interface MemoryReceiptStoreOptions {
  /** Clock in epoch ms; tests pass a controllable one. Default `Date.now`. */
  readonly clock?: () => number;
}

/**
 * Reference `ReceiptStore` for one process: per MessageId, the list of its records (one per group
 * and source; a handful at most, so a scan beats a map per source and per group, which would cost
 * two map allocations per first claim on the hot path). Every method runs synchronously inside one call, so batches are atomic with respect to
 * other callers. A batch with a key over the identity limits is refused whole, before any write.
 */
export class MemoryReceiptStore implements ReceiptStore {
  readonly #records = new Map<string, Receipt[]>();
  readonly #clock: () => number;
  #closed = false;

  constructor(options: MemoryReceiptStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  async record(updates: readonly ReceiptUpdate[]): Promise<RecordOutcome[]> {
    this.#open();
    assertKeys(updates);
    return this.#record(updates, this.#clock());
  }

  async claim(request: ReceiptClaim): Promise<ReceiptClaimResult> {
    this.#open();
    assertStorableIdentity('receipt', request);
    return this.#claim(request, this.#clock());
  }

  async claimBatch(requests: readonly ReceiptClaim[]): Promise<ReceiptClaimResult[]> {
    this.#open();
    assertKeys(requests);
    const now = this.#clock();
    return requests.map((request) => this.#claim(request, now));
  }

  /** `record(updates)` then `claimBatch(requests)`, in one synchronous step. */
  async recordAndClaim(
    updates: readonly ReceiptUpdate[],
    requests: readonly ReceiptClaim[],
  ): Promise<{ outcomes: RecordOutcome[]; claims: ReceiptClaimResult[] }> {
    this.#open();
    assertKeys(updates);
    assertKeys(requests);
    const now = this.#clock();
    const outcomes = this.#record(updates, now);
    return { outcomes, claims: requests.map((request) => this.#claim(request, now)) };
  }

  async extendLease(key: ReceiptKey, owner: string, leaseMs: number): Promise<boolean> {
    this.#open();
    const current = this.#get(key);
    if (current === undefined || current.state !== 'processing' || current.leaseOwner !== owner) return false;
    const now = this.#clock();
    this.#set({ ...current, leaseUntil: now + leaseMs, updatedAt: Math.max(now, current.updatedAt) });
    return true;
  }

  async reopen(keys: readonly ReceiptKey[]): Promise<number> {
    this.#open();
    const now = this.#clock();
    let count = 0;
    for (const key of keys) {
      const current = this.#get(key);
      const next = current === undefined ? undefined : reopenReceipt(current, now);
      if (next !== undefined) {
        this.#set(next);
        count++;
      }
    }
    return count;
  }

  async get(key: ReceiptKey): Promise<Receipt | undefined> {
    this.#open();
    return this.#get(key);
  }

  async getAll(messageId: string, source?: string): Promise<Receipt[]> {
    this.#open();
    const records = this.#records.get(messageId);
    if (records === undefined) return [];
    const chosen = source === undefined ? [...records] : records.filter((r) => r.source === source);
    return chosen.sort((a, b) => compareText(a.source, b.source) || compareText(a.group, b.group));
  }

  async list(filter: ReceiptListFilter = {}): Promise<ListPage<Receipt>> {
    this.#open();
    const limit = listPageLimit(filter.limit);
    const after = filter.cursor === undefined ? undefined : decodeListCursor(filter.cursor, 4);
    const matches: Receipt[] = [];
    for (const receipt of this.#each()) {
      if (filter.group !== undefined && receipt.group !== filter.group) continue;
      if (filter.source !== undefined && receipt.source !== filter.source) continue;
      if (filter.state !== undefined && receipt.state !== filter.state) continue;
      if (filter.type !== undefined && receipt.type !== filter.type) continue;
      if (filter.topic !== undefined && receipt.topic !== filter.topic) continue;
      if (filter.receivedFrom !== undefined && receipt.receivedAt < filter.receivedFrom) continue;
      if (filter.receivedTo !== undefined && receipt.receivedAt >= filter.receivedTo) continue;
      if (after !== undefined && compareKey(sortKey(receipt), after) <= 0) continue;
      matches.push(receipt);
    }
    matches.sort((a, b) => compareKey(sortKey(a), sortKey(b)));
    const items = matches.slice(0, limit);
    const last = items.at(-1);
    return matches.length > limit && last !== undefined ? { items, nextCursor: encodeListCursor(sortKey(last)) } : { items };
  }

  async purge(olderThan: number, options: ReceiptPurgeOptions = {}): Promise<number> {
    this.#open();
    const states = options.states === undefined ? undefined : new Set(options.states);
    let count = 0;
    for (const [messageId, records] of this.#records) {
      const kept = records.filter((r) => !(r.updatedAt < olderThan && (states === undefined || states.has(r.state))));
      count += records.length - kept.length;
      if (kept.length === 0) this.#records.delete(messageId);
      else if (kept.length < records.length) this.#records.set(messageId, kept);
    }
    return count;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #record(updates: readonly ReceiptUpdate[], now: number): RecordOutcome[] {
    return updates.map((update) => {
      const current = this.#get(update);
      const next =
        update.state === 'processed' && current !== undefined ? processedReceipt(current, update, now) : mergeReceipt(current, update, now);
      if (next === undefined) return 'ignored';
      this.#set(next);
      return current === undefined ? 'created' : 'updated';
    });
  }

  #claim(request: ReceiptClaim, now: number): ReceiptClaimResult {
    const current = this.#get(request);
    if (current === undefined) {
      const receipt = firstClaim(request, now);
      this.#set(receipt);
      return { outcome: 'claimed', receipt };
    }
    const result = decideClaim(current, request, now);
    if (result.outcome === 'claimed') this.#set(result.receipt);
    return result;
  }

  #get(key: ReceiptKey): Receipt | undefined {
    const records = this.#records.get(key.messageId);
    if (records === undefined) return undefined;
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as Receipt;
      if (r.group === key.group && r.source === key.source) return r;
    }
    return undefined;
  }

  #set(receipt: Receipt): void {
    const records = this.#records.get(receipt.messageId);
    if (records === undefined) {
      this.#records.set(receipt.messageId, [receipt]);
      return;
    }
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as Receipt;
      if (r.group === receipt.group && r.source === receipt.source) {
        records[i] = receipt;
        return;
      }
    }
    records.push(receipt);
  }

  *#each(): Generator<Receipt> {
    for (const records of this.#records.values()) yield* records;
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'receipt store closed' });
  }
}

type MutableReceipt = { -readonly [K in keyof Receipt]: Receipt[K] };

/**
 * `decideClaim(undefined, request, now).receipt`, built directly: the first claim of a MessageId
 * is every consumer's hot path. The conformance suite and this package's tests keep them equal.
 */
function firstClaim(request: ReceiptClaim, now: number): Receipt {
  const receipt: MutableReceipt = {
    group: request.group,
    source: request.source,
    messageId: request.messageId,
    state: 'processing',
    attempts: 1,
    receivedAt: now,
    updatedAt: now,
  };
  if (request.type !== undefined) receipt.type = request.type;
  if (request.topic !== undefined) receipt.topic = request.topic;
  if (request.sender !== undefined) receipt.sender = request.sender;
  receipt.leaseOwner = request.owner;
  receipt.leaseUntil = now + request.leaseMs;
  return receipt;
}

/**
 * `mergeReceipt(current, update, now)` for a `processed` update of an existing record, built
 * directly: ignored over `processed`; otherwise the highest attempt, `receivedAt` kept, known
 * type/topic kept, error and lease cleared, `processedAt` and the result set.
 */
function processedReceipt(current: Receipt, update: ReceiptUpdate, now: number): Receipt | undefined {
  if (current.state === 'processed') return undefined;
  const at = update.at ?? now;
  const receipt: MutableReceipt = {
    group: current.group,
    source: current.source,
    messageId: current.messageId,
    state: 'processed',
    attempts: Math.max(current.attempts, update.attempt ?? 1, 1),
    receivedAt: current.receivedAt,
    updatedAt: Math.max(at, current.updatedAt),
    processedAt: at,
  };
  const type = update.type ?? current.type;
  const topic = update.topic ?? current.topic;
  if (type !== undefined) receipt.type = type;
  if (topic !== undefined) receipt.topic = topic;
  if (current.sender !== undefined) receipt.sender = current.sender;
  if (update.result !== undefined) receipt.result = update.result;
  return receipt;
}

type SortKey = readonly (string | number)[];

function sortKey(receipt: Receipt): SortKey {
  return [receipt.receivedAt, receipt.group, receipt.source, receipt.messageId];
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Refuses the whole batch, before any write, when one key is over the identity limits. */
function assertKeys(keys: readonly ReceiptKey[]): void {
  for (let i = 0; i < keys.length; i++) assertStorableIdentity('receipt', keys[i] as ReceiptKey);
}

function compareKey(a: SortKey, b: SortKey): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

export function createMemoryReceiptStore(options?: MemoryReceiptStoreOptions): MemoryReceiptStore {
  return new MemoryReceiptStore(options);
}
