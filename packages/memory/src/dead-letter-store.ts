import {
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterListOptions,
  type DeadLetterStore,
  type DeadLetterSummary,
  type DeadLetterTakeOptions,
  type ListPage,
  type NewDeadLetter,
  newMessageId,
  SwitchboardError,
} from '@switchboard/core';
import {
  assertStorableIdentity,
  deadLetterStatusAt,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  mergeAttempts,
} from '@switchboard/core/kit';

export interface MemoryDeadLetterStoreOptions {
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

/** Reference `DeadLetterStore` for one process. Bodies are copied in and out, so callers cannot alter them. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  readonly #entries = new Map<string, DeadLetter>();
  /** (group, source, MessageId) → id of the entry not yet replayed, for the idempotent `add`. */
  readonly #active = new Map<string, string>();
  readonly #clock: () => number;
  #closed = false;

  constructor(options: MemoryDeadLetterStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  async add(entry: NewDeadLetter): Promise<DeadLetter> {
    this.#open();
    assertStorableIdentity('dead-letter', entry);
    return copy(this.#add(entry));
  }

  async addBatch(entries: readonly NewDeadLetter[]): Promise<DeadLetter[]> {
    this.#open();
    for (const entry of entries) assertStorableIdentity('dead-letter', entry);
    return entries.map((entry) => copy(this.#add(entry)));
  }

  async get(id: string): Promise<DeadLetter | undefined> {
    this.#open();
    const entry = this.#entries.get(id);
    return entry === undefined ? undefined : copy(this.#effective(entry));
  }

  async list(options: DeadLetterListOptions = {}): Promise<ListPage<DeadLetterSummary>> {
    this.#open();
    const limit = listPageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeListCursor(options.cursor, 2);
    const now = this.#clock();
    const matches = this.#sorted().filter(
      (entry) =>
        matches_(entry, options, now) && (after === undefined || compare([entry.deadLetteredAt, entry.id], after as [number, string]) > 0),
    );
    const items = matches.slice(0, limit).map((entry) => summary(this.#effective(entry)));
    const last = items.at(-1);
    return matches.length > limit && last !== undefined
      ? { items, nextCursor: encodeListCursor([last.deadLetteredAt, last.id]) }
      : { items };
  }

  async take(options: DeadLetterTakeOptions): Promise<DeadLetter[]> {
    this.#open();
    const limit = listPageLimit(options.limit);
    const now = this.#clock();
    const ids = options.ids === undefined ? undefined : new Set(options.ids);
    const taken: DeadLetter[] = [];
    for (const entry of this.#sorted()) {
      if (taken.length >= limit) break;
      if (ids !== undefined && !ids.has(entry.id)) continue;
      if (!matches_(entry, { ...options, status: 'pending' }, now)) continue;
      const next: DeadLetter = { ...entry, status: 'replaying', replayOwner: options.owner, replayLeaseUntil: now + options.leaseMs };
      this.#entries.set(entry.id, next);
      taken.push(copy(next));
    }
    return taken;
  }

  async markReplayed(ids: readonly string[], owner: string): Promise<number> {
    this.#open();
    const now = this.#clock();
    let count = 0;
    for (const id of new Set(ids)) {
      const entry = this.#entries.get(id);
      if (entry === undefined || entry.status !== 'replaying' || entry.replayOwner !== owner) continue;
      const { replayOwner: _o, replayLeaseUntil: _u, ...rest } = entry;
      this.#entries.set(id, { ...rest, status: 'replayed', replayedAt: now, replayCount: entry.replayCount + 1 });
      this.#forget(entry);
      count++;
    }
    return count;
  }

  async release(ids: readonly string[], owner: string): Promise<number> {
    this.#open();
    let count = 0;
    for (const id of new Set(ids)) {
      const entry = this.#entries.get(id);
      if (entry === undefined || entry.status !== 'replaying' || entry.replayOwner !== owner) continue;
      const { replayOwner: _o, replayLeaseUntil: _u, ...rest } = entry;
      this.#entries.set(id, { ...rest, status: 'pending' });
      count++;
    }
    return count;
  }

  async remove(ids: readonly string[]): Promise<number> {
    this.#open();
    let count = 0;
    for (const id of new Set(ids)) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      this.#entries.delete(id);
      this.#forget(entry);
      count++;
    }
    return count;
  }

  async purge(olderThan: number, options: { readonly onlyReplayed?: boolean } = {}): Promise<number> {
    this.#open();
    let count = 0;
    for (const [id, entry] of this.#entries) {
      if (entry.deadLetteredAt >= olderThan) continue;
      if (options.onlyReplayed === true && entry.status !== 'replayed') continue;
      this.#entries.delete(id);
      this.#forget(entry);
      count++;
    }
    return count;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #add(entry: NewDeadLetter): DeadLetter {
    const activeId = this.#active.get(activeKey(entry));
    const existing = activeId === undefined ? undefined : this.#entries.get(activeId);
    if (existing !== undefined) {
      const merged = { ...existing, attempts: mergeAttempts(existing.attempts, entry.attempts) };
      this.#entries.set(existing.id, merged);
      return this.#effective(merged);
    }
    const stored: DeadLetter = {
      id: newMessageId(),
      messageId: entry.messageId,
      source: entry.source,
      topic: entry.topic,
      group: entry.group,
      ...(entry.type === undefined ? {} : { type: entry.type }),
      ...(entry.key === undefined ? {} : { key: entry.key }),
      reason: entry.reason,
      ...(entry.detail === undefined ? {} : { detail: entry.detail }),
      attempts: mergeAttempts([], entry.attempts),
      deadLetteredAt: entry.deadLetteredAt ?? this.#clock(),
      status: 'pending',
      replayCount: 0,
      size: entry.body.byteLength,
      headers: { ...entry.headers },
      body: Uint8Array.from(entry.body),
    };
    this.#entries.set(stored.id, stored);
    this.#active.set(activeKey(stored), stored.id);
    return stored;
  }

  #forget(entry: DeadLetter): void {
    const key = activeKey(entry);
    if (this.#active.get(key) === entry.id) this.#active.delete(key);
  }

  #effective(entry: DeadLetter): DeadLetter {
    if (deadLetterStatusAt(entry, this.#clock()) === entry.status) return entry;
    const { replayOwner: _o, replayLeaseUntil: _u, ...rest } = entry;
    return { ...rest, status: 'pending' };
  }

  #sorted(): DeadLetter[] {
    return [...this.#entries.values()].sort((a, b) => compare([a.deadLetteredAt, a.id], [b.deadLetteredAt, b.id]));
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'dead-letter store closed' });
  }
}

function activeKey(entry: { readonly group: string; readonly source: string; readonly messageId: string }): string {
  return JSON.stringify([entry.group, entry.source, entry.messageId]);
}

function matches_(entry: DeadLetter, filter: DeadLetterFilter, now: number): boolean {
  if (filter.topic !== undefined && entry.topic !== filter.topic) return false;
  if (filter.group !== undefined && entry.group !== filter.group) return false;
  if (filter.type !== undefined && entry.type !== filter.type) return false;
  if (filter.reason !== undefined && entry.reason !== filter.reason) return false;
  if (filter.messageId !== undefined && entry.messageId !== filter.messageId) return false;
  if (filter.source !== undefined && entry.source !== filter.source) return false;
  if (filter.from !== undefined && entry.deadLetteredAt < filter.from) return false;
  if (filter.to !== undefined && entry.deadLetteredAt >= filter.to) return false;
  if (filter.status !== undefined && deadLetterStatusAt(entry, now) !== filter.status) return false;
  return true;
}

function compare(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function summary(entry: DeadLetter): DeadLetterSummary {
  const { headers: _h, body: _b, ...rest } = entry;
  return rest;
}

function copy(entry: DeadLetter): DeadLetter {
  return { ...entry, headers: { ...entry.headers }, body: Uint8Array.from(entry.body), attempts: [...entry.attempts] };
}

export function createMemoryDeadLetterStore(options?: MemoryDeadLetterStoreOptions): MemoryDeadLetterStore {
  return new MemoryDeadLetterStore(options);
}
