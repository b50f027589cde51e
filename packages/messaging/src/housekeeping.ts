import type { BlobStore, DeadLetterStore, ReceiptStore } from '@switchboard/core';

export interface HousekeepingOptions {
  readonly receipts?: ReceiptStore;
  readonly deadLetters?: DeadLetterStore;
  readonly blobs?: BlobStore;
  /**
   * How long receipts (and so inbox entries) are kept after their last update. It must exceed the
   * longest time the broker can redeliver a message, or a very late duplicate is taken as new.
   * Default 7 days.
   */
  readonly receiptRetentionMs?: number;
  /** How long replayed dead letters are kept. Pending ones are never purged. Default 30 days. */
  readonly deadLetterRetentionMs?: number;
  /** How often the stores are swept. Default 10 minutes. */
  readonly intervalMs?: number;
  /** Told about a failed sweep; the next one runs on schedule anyway. */
  readonly onError?: (error: unknown) => void;
  readonly clock?: () => number;
}

export interface HousekeepingReport {
  readonly receipts: number;
  readonly deadLetters: number;
  readonly blobs: number;
}

export interface Housekeeping {
  /** Sweeps now: purges old receipts and replayed dead letters, deletes expired blobs. */
  runOnce(): Promise<HousekeepingReport>;
  stop(): Promise<void>;
}

const DAY = 24 * 60 * 60 * 1000;

/**
 * Retention for the stores of a consuming service. Receipts, dead letters and claim-checked blobs
 * would otherwise grow for ever; this sweeps them on a timer that never keeps the process alive.
 */
export function startHousekeeping(options: HousekeepingOptions): Housekeeping {
  const clock = options.clock ?? Date.now;
  const receiptRetention = options.receiptRetentionMs ?? 7 * DAY;
  const deadLetterRetention = options.deadLetterRetentionMs ?? 30 * DAY;
  let running: Promise<HousekeepingReport> | undefined;

  const sweep = async (): Promise<HousekeepingReport> => {
    const now = clock();
    const [receipts, deadLetters, blobs] = await Promise.all([
      options.receipts?.purge(now - receiptRetention) ?? 0,
      options.deadLetters?.purge(now - deadLetterRetention, { onlyReplayed: true }) ?? 0,
      options.blobs?.cleanup(now) ?? 0,
    ]);
    return { receipts, deadLetters, blobs };
  };

  const runOnce = (): Promise<HousekeepingReport> => {
    running ??= sweep().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer = setInterval(
    () => {
      runOnce().catch((error: unknown) => options.onError?.(error));
    },
    options.intervalMs ?? 10 * 60 * 1000,
  );
  timer.unref();

  return {
    runOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
