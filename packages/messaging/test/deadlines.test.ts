import { afterEach, describe, expect, it, vi } from 'vitest';
import { type DeadlineEntry, Deadlines } from '../src/deadlines.js';

function entry(name: string, expired: string[]): DeadlineEntry {
  return {
    deadline: 0,
    expire: () => {
      expired.push(name);
    },
  };
}

describe('Deadlines', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires entries of several durations in deadline order, on one timer, and not the removed ones', () => {
    vi.useFakeTimers();
    const deadlines = new Deadlines();
    const expired: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => entry(name, expired)) as [
      DeadlineEntry,
      DeadlineEntry,
      DeadlineEntry,
      DeadlineEntry,
    ];
    deadlines.add(a, 40);
    deadlines.add(b, 10);
    deadlines.add(c, 40);
    deadlines.add(d, 10);
    expect(deadlines.remove(c, 40)).toBe(true);
    expect(deadlines.size).toBe(3);
    vi.advanceTimersByTime(25);
    expect(expired).toEqual(['b', 'd']);
    vi.advanceTimersByTime(40);
    expect(expired).toEqual(['b', 'd', 'a']);
    expect(deadlines.size).toBe(0);
    expect(deadlines.remove(a, 40)).toBe(false);
  });

  it('never keeps the process alive, and does not arm a timer per entry when entries come and go one at a time', () => {
    vi.useFakeTimers();
    const deadlines = new Deadlines();
    const expired: string[] = [];
    for (let i = 0; i < 100; i++) {
      const e = entry(`e${i}`, expired);
      deadlines.add(e, 60_000);
      deadlines.remove(e, 60_000);
    }
    expect(vi.getTimerCount()).toBe(1);
    const late = entry('late', expired);
    deadlines.add(late, 60_000);
    vi.advanceTimersByTime(59_999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['late']);
    vi.advanceTimersByTime(120_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("its timer is unref'd: it does not keep the process alive", () => {
    const deadlines = new Deadlines();
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const e = entry('e', []);
    deadlines.add(e, 60_000);
    // Node lists only timers that keep the event loop alive.
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
    deadlines.remove(e, 60_000);
  });
});
