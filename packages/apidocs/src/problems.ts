import type { ErrorCode } from '@switchboard/core';
import { errorRegistry, problemType } from '@switchboard/core';
import type { SchemaComponents } from './components.js';
import type { JsonObject } from './json.js';

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

/** RFC 9457 problem details as Switchboard sends them (`docs/errors.md`). */
export function problemSchema(components: SchemaComponents): JsonObject {
  const fieldError = components.define('FieldError', {
    type: 'object',
    description: 'One failing field of a validation problem.',
    properties: {
      pointer: { type: 'string', description: 'JSON Pointer (RFC 6901) to the failing value, "" for the root.' },
      message: { type: 'string' },
    },
    required: ['pointer', 'message'],
  });
  return components.define('Problem', {
    type: 'object',
    description: 'RFC 9457 problem details. Extension members may follow.',
    properties: {
      type: { type: 'string', description: 'Stable URI of the error code, e.g. `urn:switchboard:error:validation`.' },
      title: { type: 'string' },
      status: { type: 'integer', minimum: 100, maximum: 599 },
      detail: { type: 'string' },
      instance: { type: 'string' },
      code: { type: 'string', description: 'The error code: `SB_*` from the registry, or a code the operation declares.' },
      errors: { type: 'array', items: fieldError, description: 'The failing fields (validation problems).' },
      data: { description: 'Structured details of a declared operation error.' },
      retryable: { type: 'boolean', description: 'Whether retrying the same request can succeed.' },
    },
    required: ['type', 'title', 'status', 'code'],
  });
}

/** The problem of one registry code: the generic problem with its `type` and `code` fixed. */
export function registryProblem(components: SchemaComponents, code: ErrorCode): JsonObject {
  const base = problemSchema(components);
  const entry = errorRegistry[code];
  const schema: JsonObject = {
    description: `${entry.title}. ${entry.description}`,
    allOf: [base],
    properties: { type: { const: problemType(code) }, code: { const: code }, retryable: { const: entry.retryable } },
  };
  if (code === 'SB_VALIDATION') schema.required = ['errors'];
  return components.define(`Problem.${code}`, schema);
}

/** One response body schema for several problems of one status: one of the listed problem schemas. */
export function oneOfProblems(schemas: readonly JsonObject[]): JsonObject {
  if (schemas.length === 1) return schemas[0] as JsonObject;
  return { oneOf: [...schemas] };
}

/** The status of a registry code. */
export function statusOf(code: ErrorCode): number {
  return errorRegistry[code].status;
}
