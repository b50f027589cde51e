import { setTimeout as sleep } from 'node:timers/promises';
import { bodyTemplate, clockMs, stampedBody } from './stamp.js';
import { round, Samples } from './stats.js';
import type { PublishPlan, PublishResult } from './worker-protocol.js';

export interface Publisher {
  publish(body: Buffer): Promise<void>;
  publishBatch(bodies: readonly Buffer[]): Promise<void>;
}

/**
 * Runs a publish plan: closed loop (`serial`, `pipelined`, `batch`) until `count` messages or
 * `warmupMs + durationMs`, or an open loop at `ratePerS`. Every body carries its publish time.
 */
export async function runPublishPlan(publisher: Publisher, plan: PublishPlan): Promise<PublishResult> {
  if (plan.mode === 'rate') return runAtRate(publisher, plan);
  const template = bodyTemplate(plan.bodyBytes);
  const batchSize = plan.mode === 'batch' ? Math.max(1, plan.batchSize ?? 256) : 1;
  const workers = plan.mode === 'pipelined' ? Math.max(1, plan.inFlight ?? 256) : 1;
  const samples = new Samples();
  const begun = clockMs();
  const countMode = plan.count !== undefined;
  const measureFrom = countMode ? begun : begun + (plan.warmupMs ?? 0);
  const stopAt = countMode ? Number.POSITIVE_INFINITY : measureFrom + (plan.durationMs ?? 1000);
  let issued = 0;
  let total = 0;
  let sent = 0;
  let failure: unknown;
  const worker = async () => {
    while (failure === undefined && clockMs() < stopAt && (!countMode || issued < plan.count!)) {
      const size = countMode ? Math.min(batchSize, plan.count! - issued) : batchSize;
      issued += size;
      const start = clockMs();
      try {
        if (plan.mode === 'batch') await publisher.publishBatch(Array.from({ length: size }, () => stampedBody(template)));
        else await publisher.publish(stampedBody(template));
      } catch (error) {
        failure ??= error;
        return;
      }
      const end = clockMs();
      total += size;
      // Completions inside the window count (whenever they started), so slow confirms still show a rate.
      if (end >= measureFrom && end <= stopAt) {
        sent += size;
        samples.add(end - start);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure;
  const endedAt = countMode ? clockMs() : Math.min(clockMs(), stopAt);
  return summarize(sent, total, measureFrom, endedAt, samples);
}

async function runAtRate(publisher: Publisher, plan: PublishPlan): Promise<PublishResult> {
  const template = bodyTemplate(plan.bodyBytes);
  const rate = Math.max(1, plan.ratePerS ?? 100);
  const samples = new Samples();
  const pending = new Set<Promise<void>>();
  const startedAt = clockMs();
  const stopAt = plan.count === undefined ? startedAt + (plan.durationMs ?? 1000) : Number.POSITIVE_INFINITY;
  const limit = plan.count ?? Number.POSITIVE_INFINITY;
  let issued = 0;
  let failure: unknown;
  while (failure === undefined && issued < limit) {
    const now = clockMs();
    if (now >= stopAt) break;
    const due = Math.min(limit, Math.floor(((now - startedAt) * rate) / 1000) + 1);
    for (; issued < due; issued++) {
      const start = clockMs();
      const sending: Promise<void> = publisher.publish(stampedBody(template)).then(
        () => {
          samples.add(clockMs() - start);
          pending.delete(sending);
        },
        (error: unknown) => {
          failure ??= error;
          pending.delete(sending);
        },
      );
      pending.add(sending);
    }
    await sleep(Math.max(1, Math.floor(1000 / rate / 2)));
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure;
  return summarize(samples.count, issued, startedAt, clockMs(), samples);
}

function summarize(sent: number, total: number, startedAt: number, endedAt: number, samples: Samples): PublishResult {
  const [p50, p99] = samples.percentiles(50, 99);
  return {
    sent,
    total,
    startedAt,
    endedAt,
    msgsPerS: round(sent / Math.max(1e-9, (endedAt - startedAt) / 1000), 0),
    p50Ms: round(p50 ?? Number.NaN, 3),
    p99Ms: round(p99 ?? Number.NaN, 3),
  };
}
