import { defineContract, message } from '@switchboard/core';
import { z } from 'zod';
import type { BrokerConfig } from './engines.js';

/** The receiving service of the workload: one message, whose handler writes one side-effect row. */
export const chaosReceiver = defineContract({
  name: 'chaos-b',
  messages: { 'work.submitted': message({ schema: z.object({ n: z.number().int() }) }) },
});

export const SENDER = 'chaos-a';

/**
 * How the handler commits its side effect with the inbox's `processed` mark (one SQLite
 * transaction either way):
 * - `fenced`: the mark first; when the store answers `ignored` (another run already committed it)
 *   the effect is skipped. A zombie that wakes up after its claim was taken over writes nothing.
 * - `effect-first`: the effect, then the mark, without looking at the answer (the recipe the
 *   messaging docs gave before the chaos suite found that a zombie duplicates the effect).
 */
export type Recipe = 'fenced' | 'effect-first';

/** Consumer settings: short timeouts, so redeliveries after a fault come in seconds. */
export const CONSUMER_TIMEOUTS = { handlerTimeoutMs: 1500, inboxLeaseMs: 2500, ackTimeoutMs: 2500 } as const;

export interface ConsumerConfig {
  readonly broker: BrokerConfig;
  /** The SQLite file holding the effects table, the receipts (inbox) and the dead letters. */
  readonly db: string;
  readonly recipe: Recipe;
  /** How long the handler works before committing (makes a SIGSTOP catch runs in flight). */
  readonly workMs: number;
  readonly maxInFlight: number;
}
