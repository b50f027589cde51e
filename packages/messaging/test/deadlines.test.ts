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

  it('clears its timer once nothing is tracked, so it never keeps the process alive', () => {
    const deadlines = new Deadlines();
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const expired: string[] = [];
    const e = entry('e', expired);
    deadlines.add(e, 60_000);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before + 1);
    deadlines.remove(e, 60_000);
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before);
    expect(expired).toEqual([]);
  });
});
