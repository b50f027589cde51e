import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AckDeadlines } from '../src/kit.js';

describe('AckDeadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each entry once, timeoutMs after it was added, oldest first', () => {
    const expired: string[] = [];
    const deadlines = new AckDeadlines<string>(1000, (item) => expired.push(item));
    deadlines.add('a');
    vi.advanceTimersByTime(400);
    deadlines.add('b');
    vi.advanceTimersByTime(599);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a']);
    vi.advanceTimersByTime(399);
    expect(expired).toEqual(['a']);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a', 'b']);
    vi.advanceTimersByTime(10_000);
    expect(expired).toEqual(['a', 'b']);
    expect(deadlines.size).toBe(0);
  });

  it('does not expire what was deleted, and keeps one timer for many entries', () => {
    const expired: number[] = [];
    const deadlines = new AckDeadlines<number>(100, (item) => expired.push(item));
    for (let i = 0; i < 1000; i++) deadlines.add(i);
    expect(vi.getTimerCount()).toBe(1);
    for (let i = 0; i < 1000; i += 2) expect(deadlines.delete(i)).toBe(true);
    expect(deadlines.delete(0)).toBe(false);
    vi.advanceTimersByTime(100);
    expect(expired).toHaveLength(500);
    expect(expired.every((i) => i % 2 === 1)).toBe(true);
  });

  it('reschedules for entries added after the timer was set, even when the first ones are gone', () => {
    const expired: string[] = [];
    const deadlines = new AckDeadlines<string>(1000, (item) => expired.push(item));
    deadlines.add('first');
    deadlines.delete('first');
    vi.advanceTimersByTime(500);
    deadlines.add('second');
    vi.advanceTimersByTime(500);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(500);
    expect(expired).toEqual(['second']);
  });

  it('clear() stops every timeout without expiring anything', () => {
    const onExpire = vi.fn();
    const deadlines = new AckDeadlines<string>(50, onExpire);
    deadlines.add('a');
    deadlines.add('b');
    expect(deadlines.items()).toEqual(['a', 'b']);
    deadlines.clear();
    vi.advanceTimersByTime(1000);
    expect(onExpire).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});
