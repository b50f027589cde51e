import { defineContract, event, operation } from '@switchboard/core';
import { z } from 'zod';

/**
 * The contracts the demo's services share. They are the only thing ServiceA and ServiceB must
 * agree on: B's operations (sync and async HTTP, or through the broker), and the events A emits.
 * Strict objects reject unknown fields, so a typo fails loudly with 400 instead of being dropped.
 */
const name = z.string().trim().min(1).max(200);

export const serviceB = defineContract({
  name: 'service-b',
  description: 'Saves names and analyses them.',
  operations: {
    save: operation({
      description: 'Saves a name; answers whether it was saved.',
      input: z.strictObject({ name }),
      output: z.strictObject({ saved: z.boolean(), id: z.string() }),
      errors: {
        NameRejected: { status: 422, title: 'Name rejected', data: z.strictObject({ reason: z.string() }) },
      },
    }),
    analyze: operation({
      description: 'Slow analysis of a name; meant to run as an asynchronous job.',
      input: z.strictObject({ name, workMs: z.number().int().min(0).max(60_000).default(1500) }),
      output: z.strictObject({ name: z.string(), letters: z.number().int(), vowels: z.number().int(), palindrome: z.boolean() }),
      timeoutMs: 120_000,
    }),
  },
});

export const patterns = ['sync-http', 'async-http', 'message', 'event', 'claim-check'] as const;
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
