import { clockMs, readStamp } from './stamp.js';
import { round, Samples } from './stats.js';
import type { ConsumeStats } from './worker-protocol.js';

/** Counts the messages a consumer handles and their publish→handler latency; lets callers wait for a count. */
export class ConsumeRecorder {
  readonly #latency: boolean;
  #samples = new Samples();
  #received = 0;
  #startedAt = clockMs();
  #cpu = process.cpuUsage();
  #firstAt = Number.NaN;
  #lastAt = Number.NaN;
  #waiters: { count: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  #failure: Error | undefined;

  /** `latency: false` keeps no samples (a million-message backlog would otherwise grow the heap). */
  constructor(options: { latency: boolean }) {
    this.#latency = options.latency;
  }

  readonly onMessage = (body: Uint8Array): void => {
    const now = clockMs();
    if (this.#received === 0) this.#firstAt = now;
    this.#received += 1;
    this.#lastAt = now;
    if (this.#latency) this.#samples.add(now - readStamp(body));
    if (this.#waiters.length > 0) {
      this.#waiters = this.#waiters.filter((waiter) => {
        if (this.#received < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    }
  };

  /** The consumer stopped on an error: pending and later waits reject with it. */
  readonly fail = (error: unknown): void => {
    this.#failure = error instanceof Error ? error : new Error(String(error));
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  };

  reset(): void {
    this.#samples = new Samples();
    this.#received = 0;
    this.#startedAt = clockMs();
    this.#cpu = process.cpuUsage();
    this.#firstAt = Number.NaN;
    this.#lastAt = Number.NaN;
  }

  /**
   * Resolves when `count` messages were handled since the last reset, or with what arrived once
   * nothing more came for `idleMs`; rejects if the consumer failed.
   */
  async wait(count: number, idleMs: number): Promise<ConsumeStats> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#received < count) {
      await new Promise<void>((resolve, reject) => {
        let seen = this.#received;
        let quietSince = clockMs();
        const timer = setInterval(
          () => {
            if (this.#received !== seen) {
              seen = this.#received;
              quietSince = clockMs();
            } else if (clockMs() - quietSince >= idleMs) {
              clearInterval(timer);
              this.#waiters = this.#waiters.filter((waiter) => waiter !== entry);
              resolve();
            }
          },
          Math.min(250, idleMs),
        );
        const entry = {
          count,
          resolve: () => {
            clearInterval(timer);
            resolve();
          },
          reject: (error: Error) => {
            clearInterval(timer);
            reject(error);
          },
        };
        this.#waiters.push(entry);
      });
    }
    return this.stats();
  }

  stats(): ConsumeStats {
    const [p50, p99] = this.#samples.percentiles(50, 99);
    const cpu = process.cpuUsage(this.#cpu);
    return {
      cpuMs: round((cpu.user + cpu.system) / 1000, 1),
      received: this.#received,
      startedAt: this.#startedAt,
      firstAt: this.#firstAt,
      lastAt: this.#lastAt,
      p50Ms: round(p50 ?? Number.NaN, 3),
      p99Ms: round(p99 ?? Number.NaN, 3),
    };
  }
}
