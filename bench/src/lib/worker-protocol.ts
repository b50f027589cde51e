/** Messages between a scenario and its queue worker processes (over the IPC channel of `fork`). */

export interface PublishPlan {
  /**
   * `serial`: one publish at a time, each awaited. `pipelined`: `inFlight` publishes outstanding.
   * `batch`: `publishBatch` of `batchSize`, one batch at a time. `rate`: open loop at `ratePerS`.
   */
  readonly mode: 'serial' | 'pipelined' | 'batch' | 'rate';
  readonly bodyBytes: number;
  /** Stop after this many messages (no warm-up) ... */
  readonly count?: number;
  /** ... or after this long, once `warmupMs` has passed. */
  readonly durationMs?: number;
  readonly warmupMs?: number;
  readonly inFlight?: number;
  readonly batchSize?: number;
  readonly ratePerS?: number;
}

export interface PublishResult {
  /** Messages confirmed in the measured window. */
  readonly sent: number;
  /** Messages published in all, warm-up included (what the consumer will see). */
  readonly total: number;
  /** Monotonic clock (ms) when the measured window began and ended. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly msgsPerS: number;
  /** Publish→confirm latency of one call (one batch in `batch` mode). */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ConsumeStats {
  readonly received: number;
  /** Monotonic clock (ms) of the last reset (or the consume start), the first and the last message. */
  readonly startedAt: number;
  readonly firstAt: number;
  readonly lastAt: number;
  /** Publish→handler latency, from the time stamped in each body. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU time the consumer process used since the last reset (or the consume start), all threads. */
  readonly cpuMs: number;
}

export interface MemoryStats {
  readonly rssMiB: number;
  readonly heapUsedMiB: number;
}

export type WorkerCommand =
  | { readonly op: 'setup'; readonly topic: string }
  | { readonly op: 'cleanup'; readonly topic: string }
  | { readonly op: 'drop-scope' }
  | { readonly op: 'publish'; readonly topic: string; readonly plan: PublishPlan }
  | { readonly op: 'consume'; readonly topic: string; readonly maxInFlight: number; readonly latency: boolean }
  | { readonly op: 'reset' }
  | { readonly op: 'wait'; readonly count: number; readonly idleMs: number }
  | { readonly op: 'stop-consume' }
  | { readonly op: 'memory' };

export interface WorkerRequest {
  readonly id: number;
  readonly command: WorkerCommand;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }
  | { readonly ready: true }
  | { readonly failed: string };
