/** One entry of `Deadlines`: `expire` runs once its time has come, unless it was removed first. */
export interface DeadlineEntry {
  /** Epoch ms at which the entry expires (set by `Deadlines.add`). */
  deadline: number;
  expire(): void;
}

/**
 * Many deadlines on one timer. Entries are grouped by their duration: within a group they expire
 * in the order they were added, so adding and removing is O(1) and the timer is armed for the
 * earliest head only. This replaces a `setTimeout` per handler run with one timer for all of them.
 * The timer is unref'd, so it never keeps a process alive, and it is not cleared when the last entry
 * goes: a consumer whose handlers finish one at a time would otherwise arm and clear a timer per
 * message. A timer that fires with nothing due just re-arms for the earliest entry left, if any.
 */
export class Deadlines {
  readonly #groups = new Map<number, Set<DeadlineEntry>>();
  readonly #clock: () => number;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#size;
  }

  /** Tracks `entry`, expiring `ms` from now. */
  add(entry: DeadlineEntry, ms: number): void {
    entry.deadline = this.#clock() + ms;
    let group = this.#groups.get(ms);
    if (group === undefined) {
      group = new Set();
      this.#groups.set(ms, group);
    }
    group.add(entry);
    this.#size += 1;
    if (entry.deadline < this.#armedAt) this.#arm(entry.deadline);
  }

  /** Stops tracking `entry`; false when it was not tracked (already expired or removed). */
  remove(entry: DeadlineEntry, ms: number): boolean {
    const group = this.#groups.get(ms);
    if (group === undefined || !group.delete(entry)) return false;
    this.#size -= 1;
    return true;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - this.#clock()));
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock();
    const expired: DeadlineEntry[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const group of this.#groups.values()) {
      for (const entry of group) {
        if (entry.deadline > now) {
          next = Math.min(next, entry.deadline);
          break;
        }
        group.delete(entry);
        expired.push(entry);
      }
    }
    this.#size -= expired.length;
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    for (const entry of expired) entry.expire();
  };
}
