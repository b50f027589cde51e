import { changes, defineContract, event, operation } from '@switchboard/core';
import { z } from 'zod';

/**
 * The contracts the demo's services share. They are the only thing ServiceA and ServiceB must
 * agree on: B's operations (sync and async HTTP, or through the broker), and the events A emits.
 * Strict objects reject unknown fields, so a typo fails loudly with 400 instead of being dropped.
 */
const name = z.string().trim().min(1).max(200);

/** A row of ServiceB's `names` table, as its committed changes carry it. */
export const savedName = z.object({
  id: z.string(),
  name: z.string(),
  /** How many times the name was saved. */
  saves: z.number().int().min(1),
  saved_at: z.string(),
});

export const serviceB = defineContract({
  name: 'service-b',
  description: 'Saves names and analyses them.',
  operations: {
    save: operation({
      description: 'Saves a name (a row of the names table); answers its id and how many times it was saved.',
      input: z.strictObject({ name }),
      // traceId: the W3C trace the handler ran in (the demo shows that one trace spans A and B).
      output: z.strictObject({ saved: z.boolean(), id: z.string(), saves: z.number().int(), traceId: z.string() }),
      errors: {
        NameRejected: { status: 422, title: 'Name rejected', data: z.strictObject({ reason: z.string() }) },
      },
    }),
    analyze: operation({
      description: 'Slow analysis of a name; meant to run as an asynchronous job.',
      input: z.strictObject({ name, workMs: z.number().int().min(0).max(60_000).default(1500) }),
      output: z.strictObject({
        name: z.string(),
        letters: z.number().int(),
        vowels: z.number().int(),
        palindrome: z.boolean(),
        traceId: z.string(),
      }),
      timeoutMs: 120_000,
    }),
  },
  // No code of B emits it: every committed insert or update of its `names` table becomes
  // `name.saved` (SQLite triggers into B's outbox, or PostgreSQL logical replication).
  changes: [changes('names', { columns: savedName, key: 'id', insert: 'name.saved', update: 'name.saved' })],
});

/** ServiceC: reacts to events; answers what it saw of B's row changes. */
export const serviceC = defineContract({
  name: 'service-c',
  description: 'Reacts to what A and B announce.',
  operations: {
    seen: operation({
      description: 'Waits (up to waitMs) until C reacted to name.saved for row `id` saved at least `saves` times; answers what it saw.',
      input: z.strictObject({
        id: z.string(),
        saves: z.number().int().min(1),
        waitMs: z.number().int().min(0).max(30_000).default(10_000),
      }),
      output: z.strictObject({
        seen: z.boolean(),
        messageId: z.string().optional(),
        source: z.string().optional(),
        saves: z.number().int().optional(),
      }),
    }),
  },
});

export const patterns = ['sync-http', 'async-http', 'message', 'request-reply', 'event', 'claim-check', 'change-event'] as const;
export type Pattern = (typeof patterns)[number];

/** What ServiceA reports for one run of one pattern. */
export const patternReport = z.strictObject({
  pattern: z.enum(patterns),
  ok: z.boolean(),
  durationMs: z.number(),
  summary: z.string(),
  coupling: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type PatternReport = z.infer<typeof patternReport>;

export const serviceA = defineContract({
  name: 'service-a',
  description: 'Processes requests; talks to ServiceB in the pattern it is asked to use.',
  operations: {
    process: operation({
      description: "Runs ServiceA's business logic for a name, reaching ServiceB through one pattern.",
      input: z.strictObject({ name, pattern: z.enum(patterns) }),
      output: patternReport,
      timeoutMs: 60_000,
    }),
  },
  events: {
    'name.processed': event({ description: 'ServiceA processed a name. No payload: who reacts is up to them.' }),
    'picture.uploaded': event({
      description: 'A picture is available; the bytes travel by claim check.',
      data: z.strictObject({ name: z.string(), width: z.number().int(), height: z.number().int() }),
      attachment: true,
    }),
  },
});
