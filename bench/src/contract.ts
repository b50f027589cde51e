import { defineContract, operation } from '@switchboard/core';
import { z } from 'zod';

/** The benchmark's operation: a ~100-byte JSON body in, a small JSON answer out, both validated. */
export const benchContract = defineContract({
  name: 'bench',
  operations: {
    save: operation({
      input: z.object({
        name: z.string().min(1).max(100),
        email: z.string().max(200),
        tags: z.array(z.string()).max(10),
        age: z.number().int().min(0),
      }),
      output: z.object({ saved: z.boolean(), name: z.string() }),
      idempotent: true,
    }),
  },
});

export const payload = JSON.stringify({ name: 'Ada Lovelace', email: 'ada@example.com', tags: ['math', 'engines'], age: 36 });
