import { Pool } from 'undici';
import { round, Samples } from './stats.js';

export interface LoadOptions {
  readonly origin: string;
  readonly path: string;
  readonly body: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Sends one request; defaults to a raw undici Pool POST of `body`. Must throw on a non-2xx answer. */
  readonly send?: () => Promise<unknown>;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/**
 * Closed-loop load: `concurrency` workers each send a request, wait for the answer, send the next,
 * for `durationMs` after a warm-up. Latency is measured per request with hrtime.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, { connections: Math.max(1, options.concurrency), pipelining: 1 });
  const headers = { 'content-type': 'application/json' };
  const send =
    options.send ??
    (async () => {
      const response = await pool.request({ method: 'POST', path: options.path, headers, body: options.body });
      const text = await response.body.text();
      if (response.statusCode >= 300) throw new Error(`HTTP ${response.statusCode}: ${text}`);
    });
  const samples = new Samples();
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const start = process.hrtime.bigint();
      try {
        await send();
        if (measuring) samples.add(Number(process.hrtime.bigint() - start) / 1e6);
      } catch {
        if (measuring) errors++;
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  measuring = true;
  const started = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, options.durationMs));
  measuring = false;
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  stop = true;
  await Promise.all(workers);
  await pool.close();
  const [p50, p99] = samples.percentiles(50, 99);
  return {
    requests: samples.count,
    errors,
    rps: round(samples.count / elapsedS, 0),
    p50Ms: round(p50 ?? Number.NaN, 3),
    p99Ms: round(p99 ?? Number.NaN, 3),
  };
}
