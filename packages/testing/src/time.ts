import { SwitchboardError } from '@switchboard/core';

// Taken when this module loads, before a test installs fake timers: the testbed's own waiting runs
// on real time whatever the code under test sees.
const realSetTimeout = globalThis.setTimeout;
const realSetImmediate = globalThis.setImmediate;
const realNow = performance.now.bind(performance);

/**
 * Fake timers the testbed drives: vitest's `vi` and Jest's `jest` have both methods, so pass
 * either once `useFakeTimers` was called. With it, the testbed's waiting helpers let virtual time
 * pass (to the next timer) whenever the services are idle, and `advance(ms)` moves it by hand.
 */
export interface TimerDriver {
  advanceTimersByTimeAsync(ms: number): unknown;
  advanceTimersToNextTimerAsync(): unknown;
  /** Timers pending (vitest and Jest have it): lets a wait stop early when nothing is scheduled. */
  getTimerCount?(): number;
}

/**
 * What to fake (`vi.useFakeTimers({ toFake: [...FAKE_TIMERS] })`): timers, `Date` and
 * `performance`, which retries, backoff, leases and deadlines read. `setImmediate`,
 * `process.nextTick` and microtasks stay real: the in-memory broker, the job runner and the
 * in-memory HTTP pipes hand work on with them, so the services keep running between two moves
 * of the clock.
 */
export const FAKE_TIMERS = ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] as const;

/** One real event-loop turn (the fake timers, if any, are not involved). */
export function turn(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

export interface WaitOptions {
  /** What is awaited, for the error message. */
  readonly what: string;
  /** Real ms without fake timers; virtual ms of fake time with them. */
  readonly timeoutMs: number;
  readonly timers: TimerDriver | undefined;
  /** What was last seen, for the error message. */
  readonly seen?: () => string | undefined;
}

/** Real turns with nothing to show before a wait lets fake time pass. */
const IDLE_TURNS = 3;
/** Real time a wait on fake timers may take, whatever the virtual budget. */
const REAL_LIMIT_MS = 15_000;

/**
 * Polls `probe` until it answers something other than `undefined`. Stores in memory answer at
 * once, so polling is cheap; between polls the services run. With fake timers, once the services
 * are idle for a few event-loop turns, time jumps to the next timer (a retry's backoff, a lease,
 * a poll interval) — as if the test had waited for it — until `timeoutMs` of virtual time passed.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, options: WaitOptions): Promise<T> {
  const timers = options.timers;
  const startedAt = realNow();
  const virtualStart = Date.now();
  let pause = 1;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (timers === undefined) {
      if (realNow() - startedAt >= options.timeoutMs) throw timedOut(options);
      await sleep(pause);
      pause = Math.min(pause * 2, 20);
      continue;
    }
    for (let i = 0; i < IDLE_TURNS; i++) {
      await turn();
      const again = await probe();
      if (again !== undefined) return again;
    }
    if (Date.now() - virtualStart >= options.timeoutMs || realNow() - startedAt >= REAL_LIMIT_MS) throw timedOut(options);
    if (timers.getTimerCount?.() === 0) {
      // Nothing scheduled: only real work (I/O) can make progress.
      await sleep(pause);
      pause = Math.min(pause * 2, 20);
      if (realNow() - startedAt >= Math.min(options.timeoutMs, REAL_LIMIT_MS)) throw timedOut(options);
      continue;
    }
    await timers.advanceTimersToNextTimerAsync();
  }
}

function timedOut(options: WaitOptions): SwitchboardError {
  const seen = options.seen?.();
  const clock = options.timers === undefined ? 'ms' : 'ms of fake time';
  return new SwitchboardError('SB_DEADLINE_EXCEEDED', {
    detail: `Waited ${options.timeoutMs} ${clock} for ${options.what}${seen === undefined ? '' : `; last seen: ${seen}`}`,
  });
}

/**
 * Settles `work` while fake timers (if any) run: whenever the services are idle for a few
 * event-loop turns, time jumps to the next timer. Without `timers`, `work` as it is.
 */
export async function drive<T>(work: Promise<T>, timers: TimerDriver | undefined): Promise<T> {
  if (timers === undefined) return work;
  let settled = false;
  const done = (): void => {
    settled = true;
  };
  work.then(done, done);
  let pause = 1;
  while (!settled) {
    for (let i = 0; i < IDLE_TURNS && !settled; i++) await turn();
    if (settled) break;
    if (timers.getTimerCount?.() === 0) {
      await sleep(pause);
      pause = Math.min(pause * 2, 20);
      continue;
    }
    await timers.advanceTimersToNextTimerAsync();
  }
  return work;
}
