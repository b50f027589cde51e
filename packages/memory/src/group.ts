import type { Headers } from '@switchboard/core';

/** Deliveries handed out per dispatch turn before yielding to the event loop. */
const DISPATCH_TURN = 2048;

/** A message as stored: copied at publish, shared by every group. */
export interface StoredMessage {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key: string | undefined;
}

/** A message's place in one group. */
export interface Entry {
  readonly message: StoredMessage;
  /** Deliveries so far. */
  attempt: number;
}

/** A subscriber of a group, as the group sees it. */
export interface GroupMember {
  hasCapacity(): boolean;
  deliver(entry: Entry): void;
}

/** A FIFO of entries that can also take entries back at the front (nacks), without per-item allocation. */
class EntryQueue {
  #items: (Entry | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(entry: Entry): void {
    this.#items.push(entry);
  }

  unshift(entry: Entry): void {
    if (this.#head > 0) {
      this.#head -= 1;
      this.#items[this.#head] = entry;
    } else {
      this.#items.unshift(entry);
    }
  }

  shift(): Entry | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const entry = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }
}

/**
 * A consumer group of one topic, the memory engine itself: its queue, its members (handed entries
 * round-robin while they have free slots), per-key ownership and delayed redeliveries.
 */
export class Group {
  readonly #queue = new EntryQueue();
  readonly #members: GroupMember[] = [];
  /** Per-key ordering: the one outstanding entry of each key, and the entries waiting behind it. */
  readonly #owners = new Map<string, Entry>();
  readonly #waiting = new Map<string, Entry[]>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #next = 0;
  #scheduled = false;
  #closed = false;

  /** Entries waiting to be delivered (queued, or behind an outstanding entry of their key). */
  get pending(): number {
    let count = this.#queue.length;
    for (const waiting of this.#waiting.values()) count += waiting.length;
    return count;
  }

  join(member: GroupMember): void {
    this.#members.push(member);
    this.schedule();
  }

  leave(member: GroupMember): void {
    const index = this.#members.indexOf(member);
    if (index >= 0) this.#members.splice(index, 1);
  }

  enqueue(entry: Entry): void {
    this.#queue.push(entry);
    this.schedule();
  }

  /** Puts an entry back at the front (nack, ack timeout, release); after `delayMs` if given. */
  requeue(entry: Entry, delayMs: number): void {
    if (this.#closed) return;
    if (delayMs > 0) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.requeue(entry, 0);
      }, delayMs);
      timer.unref();
      this.#timers.add(timer);
      return;
    }
    this.#queue.unshift(entry);
    this.schedule();
  }

  /** The entry is done for this group: its slot is free, and the next entry of its key may go. */
  finished(entry: Entry): void {
    const key = entry.message.key;
    if (key !== undefined && this.#owners.get(key) === entry) {
      const waiting = this.#waiting.get(key);
      const next = waiting?.shift();
      if (next === undefined) {
        this.#owners.delete(key);
        this.#waiting.delete(key);
      } else {
        if (waiting!.length === 0) this.#waiting.delete(key);
        this.#owners.set(key, next);
        this.#queue.unshift(next);
      }
    }
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    queueMicrotask(this.#dispatch);
  }

  readonly #dispatch = (): void => {
    this.#scheduled = false;
    let handed = 0;
    while (this.#queue.length > 0 && this.#members.length > 0) {
      const member = this.#pickMember();
      if (member === undefined) return;
      const entry = this.#queue.shift()!;
      const key = entry.message.key;
      if (key !== undefined) {
        const owner = this.#owners.get(key);
        if (owner === undefined) {
          this.#owners.set(key, entry);
        } else if (owner !== entry) {
          const waiting = this.#waiting.get(key);
          if (waiting === undefined) this.#waiting.set(key, [entry]);
          else waiting.push(entry);
          continue;
        }
      }
      member.deliver(entry);
      handed += 1;
      if (handed >= DISPATCH_TURN) {
        this.#scheduled = true;
        setImmediate(this.#dispatch);
        return;
      }
    }
  };

  #pickMember(): GroupMember | undefined {
    const count = this.#members.length;
    for (let i = 0; i < count; i++) {
      const index = (this.#next + i) % count;
      const member = this.#members[index]!;
      if (member.hasCapacity()) {
        this.#next = (index + 1) % count;
        return member;
      }
    }
    return undefined;
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
