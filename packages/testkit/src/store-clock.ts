/** A clock tests move by hand; stores under test take `clock.now` as their clock. */
export interface TestClock {
  readonly now: () => number;
  advance(ms: number): void;
}

export function testClock(start = 1_700_000_000_000): TestClock {
  let current = start;
  return {
    now: () => current,
    advance(ms: number) {
      current += ms;
    },
  };
}
