export interface BackoffOptions {
  /** Delay before the first retry, in ms. Default 100. */
  readonly baseMs?: number;
  /** Upper bound of one delay, in ms. Default 30 000. */
  readonly maxMs?: number;
  /** Growth per attempt. Default 2. */
  readonly factor?: number;
  /** `full`: uniform in [0, d]; `equal`: d/2 + uniform in [0, d/2]; `none`. Default `full`. */
  readonly jitter?: 'full' | 'equal' | 'none';
}

/**
 * Exponential backoff with jitter. `attempt` is the number of the attempt that just failed (1 for
 * the first), so the first retry waits about `baseMs`.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? 100;
  const max = options.maxMs ?? 30_000;
  const factor = options.factor ?? 2;
  const exponent = Math.max(0, attempt - 1);
  const delay = Math.min(max, base * factor ** exponent);
  switch (options.jitter ?? 'full') {
    case 'full':
      return Math.round(random() * delay);
    case 'equal':
      return Math.round(delay / 2 + (random() * delay) / 2);
    case 'none':
      return Math.round(delay);
  }
}

/** Parses an HTTP `Retry-After` header (delta-seconds or HTTP-date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
