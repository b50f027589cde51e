import { convertSchema, generateOpenApi } from '@switchboard/apidocs';
import type { StandardSchemaV1 } from '@switchboard/core';
import { defineContract, operation } from '@switchboard/core';
import { type } from 'arktype';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { openApiErrors } from './checks.js';

const handmade: StandardSchemaV1<{ n: number }> = {
  '~standard': { version: 1, vendor: 'handmade', validate: (value) => ({ value: value as { n: number } }) },
};

const throwing = {
  '~standard': {
    version: 1,
    vendor: 'thrower',
    validate: (value: unknown) => ({ value }),
    jsonSchema: {
      input: () => {
        throw new Error('cannot do that');
      },
      output: () => {
        throw new Error('cannot do that');
      },
    },
  },
} as StandardSchemaV1;

describe('convertSchema', () => {
  it('uses the vendor’s own converter for zod and arktype, @valibot/to-json-schema for valibot', async () => {
    const schemas = [z.object({ a: z.string().min(2) }), type({ a: 'string >= 2' }), v.object({ a: v.pipe(v.string(), v.minLength(2)) })];
    for (const schema of schemas) {
      const converted = await convertSchema(schema, 'input', 'draft-2020-12');
      expect(converted.problems).toEqual([]);
      expect(converted.fallback).toBe(false);
      expect(converted.schema).toMatchObject({ type: 'object', properties: { a: { type: 'string', minLength: 2 } }, required: ['a'] });
    }
  });

  it('converts the input or the output side', async () => {
    const schema = z.object({ n: z.number().default(1) });
    expect((await convertSchema(schema, 'input', 'draft-07')).schema.required).toBeUndefined();
    expect((await convertSchema(schema, 'output', 'draft-07')).schema.required).toEqual(['n']);
  });

  it('gives the documented fallback for a vendor without a converter, or a converter that throws', async () => {
    for (const [schema, reason] of [
      [handmade, 'the handmade schema has no Standard JSON Schema converter (~standard.jsonSchema)'],
      [throwing, 'cannot do that'],
    ] as const) {
      const converted = await convertSchema(schema, 'input', 'draft-2020-12');
      expect(converted.fallback).toBe(true);
      expect(converted.problems).toEqual([reason]);
      expect(converted.schema).toEqual({
        description: `Not expressible in JSON Schema (${reason}); any value is shown here, the service validates it.`,
      });
    }
    const contract = defineContract({ name: 'handmade', operations: { go: operation({ input: handmade, output: throwing }) } });
    const { document, warnings } = await generateOpenApi(contract);
    expect(await openApiErrors(document)).toEqual([]);
    expect(warnings.map((w) => w.subject)).toEqual(['handmade operation go input', 'handmade operation go output']);
  });
});
