/**
 * Checks done with software others wrote: `@seriousme/openapi-schema-validator` (the OpenAPI 3.1
 * schema), `@asyncapi/parser` (the AsyncAPI parser with its Spectral rules) and Ajv (JSON Schema
 * 2020-12) for answers against the documented response schemas.
 */
import { Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { JsonObject } from '@switchboard/apidocs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as formats from 'ajv-formats';

export async function openApiErrors(document: JsonObject): Promise<unknown[]> {
  const result = await new Validator().validate(structuredClone(document));
  return result.valid ? [] : ((result.errors as unknown[] | undefined) ?? ['invalid']);
}

export interface AsyncApiDiagnostics {
  readonly errors: string[];
  readonly warnings: string[];
  readonly infos: string[];
  readonly hints: string[];
}

/** Spectral severities: 0 error, 1 warning, 2 information, 3 hint. */
export async function asyncApiDiagnostics(document: JsonObject): Promise<AsyncApiDiagnostics> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  const at = (severity: number) =>
    diagnostics.filter((d) => d.severity === severity).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  return { errors: at(0), warnings: at(1), infos: at(2), hints: at(3) };
}

/** Resolves a local reference (`#/a/b`) inside a document. */
export function resolvePointer(document: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = document;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const segment = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !(segment in node)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/** Every local `$ref` of the document that points nowhere. */
export function unresolvedRefs(document: JsonObject): string[] {
  const missing: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        if (key === '$ref' && typeof child === 'string' && child.startsWith('#') && resolvePointer(document, child) === undefined) {
          missing.push(child);
        } else walk(child);
      }
    }
  };
  walk(document);
  return missing;
}

/** Every `$ref` string of a value (to check where a document points). */
export function refsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(refsOf);
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, child]) => (key === '$ref' && typeof child === 'string' ? [child] : refsOf(child)));
}

const addFormats = ((formats as unknown as { default?: unknown }).default ?? formats) as (ajv: Ajv2020) => Ajv2020;

/**
 * A validator of values against schemas taken from an OpenAPI 3.1 document: each schema is
 * compiled with the document's `components` beside it, so `#/components/schemas/...` resolves.
 */
export function schemaValidator(document: JsonObject): (schema: unknown, value: unknown) => string[] {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true, validateFormats: true }));
  let n = 0;
  return (schema, value) => {
    const validate = ajv.compile({ ...(schema as object), $id: `urn:test:schema:${n++}`, components: document.components });
    return validate(value) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message}`);
  };
}

/**
 * A small valid value for a JSON Schema (what an example input is made of): required members
 * only, the lowest number a schema allows, the first of an `enum`, strings as long as `minLength`.
 */
export function sample(schema: unknown, document: unknown, depth = 0): unknown {
  if (depth > 20 || typeof schema !== 'object' || schema === null) return null;
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === 'string') return sample(resolvePointer(document, s.$ref), document, depth + 1);
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum)) return s.enum[0];
  if (Array.isArray(s.allOf)) return Object.assign({}, ...s.allOf.map((part) => sample(part, document, depth + 1)));
  if (Array.isArray(s.oneOf)) return sample(s.oneOf[0], document, depth + 1);
  if (Array.isArray(s.anyOf)) return sample(s.anyOf[0], document, depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      for (const name of (s.required as string[] | undefined) ?? []) out[name] = sample(properties[name], document, depth + 1);
      return out;
    }
    case 'array':
      return Array.from({ length: Number(s.minItems ?? 0) }, () => sample(s.items, document, depth + 1));
    case 'string':
      return s.format === 'date-time' ? new Date(0).toISOString() : 'x'.repeat(Math.max(Number(s.minLength ?? 1), 1));
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? Math.max(s.minimum, 0) : 0;
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return null;
  }
}
