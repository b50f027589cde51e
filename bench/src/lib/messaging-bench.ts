import { defineContract, message, type SigningOptions } from '@switchboard/core';
import { z } from 'zod';

/** The messaging benchmark's contract: one message of ~1 KiB JSON, stamped with its send time. */
export const messagingBenchContract = defineContract({
  name: 'bench-messaging',
  messages: {
    'work.submitted': message({ schema: z.object({ n: z.number().int(), sentAt: z.number(), pad: z.string() }) }),
  },
});

/** Padding that makes one encoded message body 1 KiB. */
export const PAD = 'x'.repeat(1024 - JSON.stringify({ n: 100000, sentAt: 1234567.123456, pad: '' }).length);

/**
 * What is measured. `bare`: the bare two-process SQLite queue (a table, a batch insert per
 * transaction, select + delete). `transport`: messaging with envelope, validation and ack; no
 * inbox, no receipts. `full`: the same plus the SQLite inbox and receipts.
 */
export type MessagingPath = 'bare' | 'transport' | 'full';

/**
 * Signing on both sides (the `messaging-signing` scenario): the producer signs with HMAC-SHA256,
 * the consumer verifies against the key bound to the producer's source.
 */
export const BENCH_SIGNING_KEY = { id: 'bench-1', algorithm: 'hs256', secret: 'bench-signing-secret-0123456789abcdef' } as const;
export const benchProducerSigning: SigningOptions = { sign: BENCH_SIGNING_KEY };
export const benchConsumerSigning: SigningOptions = {
  verify: { keys: [BENCH_SIGNING_KEY], sources: { 'bench-producer': [BENCH_SIGNING_KEY.id] } },
};

export interface ConsumerStart {
  readonly path: string;
  readonly mode: MessagingPath;
  /** Verify signatures (and the producer signs). */
  readonly signing?: boolean;
  readonly count: number;
  readonly maxInFlight: number;
}

export interface ProducerStart {
  readonly path: string;
  readonly mode: MessagingPath;
  /** Sign every message. */
  readonly signing?: boolean;
  readonly count: number;
  /** Messages per `sendBatch` (per insert transaction for `bare`). */
  readonly batch: number;
  /** Batches outstanding at once. */
  readonly inFlight: number;
  /** When set: one message at a time, this long apart (idle latency). */
  readonly intervalMs?: number;
}

export interface ConsumerDone {
  readonly type: 'consumed';
  readonly received: number;
  /** Monotonic clock (ms) of the first and last handled message. */
  readonly firstAt: number;
  readonly lastAt: number;
  /** Publish→handler latency. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMs: number;
}

export interface ProducerDone {
  readonly type: 'produced';
  readonly startedAt: number;
  readonly endedAt: number;
  readonly cpuMs: number;
}

export type WorkerMessage = { readonly type: 'ready' } | ConsumerDone | ProducerDone | { readonly type: 'error'; readonly error: string };

/** Table of the bare queue. */
export const BARE_TABLE = 'bare_messaging_queue';
