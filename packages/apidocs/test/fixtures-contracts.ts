/** Test contracts written with each validator the documents must handle: zod, valibot, arktype. */
import { defineContract, event, message, operation } from '@switchboard/core';
import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';

const Person = z.object({ name: z.string().min(1), email: z.email() }).meta({ id: 'Person' });
interface Tree {
  label: string;
  children: Tree[];
}
const Tree: z.ZodType<Tree> = z.object({
  label: z.string(),
  get children() {
    return z.array(Tree);
  },
});

/** Shared definitions (`.meta({ id })`), recursion, defaults, declared errors with data. */
export const zodContract = defineContract({
  name: 'zod-service',
  description: 'Written with zod 4.',
  operations: {
    register: operation({
      description: 'Registers a pair of people.',
      input: z.strictObject({ owner: Person, deputy: Person, note: z.string().default('') }),
      output: z.strictObject({ id: z.uuid(), tree: Tree }),
      errors: {
        Duplicate: { status: 409, title: 'Already registered', data: z.object({ existing: z.string() }) },
        Banned: { status: 403 },
      },
      idempotent: true,
    }),
    rebuild: operation({ input: z.object({ depth: z.number().int().min(1).max(5) }), output: Tree, mode: 'async' }),
    ping: operation({ input: z.object({}), output: z.object({ pong: z.literal(true) }), mode: 'sync' }),
  },
  messages: { 'person.imported': message({ schema: Person, description: 'A person to import.' }) },
  events: {
    'person.registered': event({ data: z.object({ id: z.string() }) }),
    'cache.flushed': event({ description: 'Payload-free.' }),
    'heartbeat.sent': event({ data: z.object({ at: z.number() }), delivery: 'at-most-once' }),
  },
});

export const valibotContract = defineContract({
  name: 'valibot-service',
  operations: {
    lookup: operation({
      input: v.object({ key: v.pipe(v.string(), v.minLength(2), v.maxLength(40)), limit: v.optional(v.number(), 10) }),
      output: v.object({ values: v.array(v.string()), total: v.pipe(v.number(), v.integer()) }),
      errors: { Missing: { status: 404, data: v.object({ key: v.string() }) } },
    }),
  },
  messages: { 'key.expired': message({ schema: v.object({ key: v.string() }) }) },
  events: { 'key.added': event({ data: v.object({ key: v.string(), ttl: v.number() }), attachment: true }) },
});

export const arktypeContract = defineContract({
  name: 'arktype-service',
  operations: {
    score: operation({
      input: type({ player: 'string > 0', 'points?': 'number.integer >= 0' }),
      output: type({ player: 'string', total: 'number' }),
    }),
  },
  events: { 'score.changed': event({ data: type({ player: 'string', total: 'number' }) }) },
});

/** Schemas JSON Schema cannot express: a date, a transform, an arktype morph, a valibot date. */
export const unrepresentableContract = defineContract({
  name: 'odd-service',
  operations: {
    schedule: operation({
      input: z.object({ at: z.date(), label: z.string() }),
      output: z.object({ length: z.string().transform((s) => s.length) }),
    }),
    measure: operation({
      input: type({ since: 'Date' }),
      output: type({ text: 'string' }).pipe((value) => value.text.length),
    }),
    stamp: operation({ input: v.object({ when: v.date() }), output: v.object({ ok: v.boolean() }) }),
  },
  messages: { 'reminder.due': message({ schema: z.object({ due: z.date() }) }) },
});
