import type { StandardSchemaV1 } from '@switchboard/core';
import { describeError } from '@switchboard/core/kit';
import type { JsonObject } from './json.js';
import { isJsonObject } from './json.js';

/** JSON Schema dialects the documents use: 2020-12 inside OpenAPI 3.1, draft-07 inside AsyncAPI 3.0. */
export type SchemaTarget = 'draft-2020-12' | 'draft-07';

/** Which side of a schema: what is sent to it (`input`) or what comes out after defaults and transforms (`output`). */
export type SchemaIo = 'input' | 'output';

/**
 * The Standard JSON Schema interface (`StandardJSONSchemaV1` of `@standard-schema/spec` 1.1):
 * validators that have it convert themselves. Declared here, as the core declares Standard Schema.
 */
interface StandardJsonSchemaConverter {
  readonly input: (options: { readonly target: string; readonly libraryOptions?: Record<string, unknown> }) => Record<string, unknown>;
  readonly output: (options: { readonly target: string; readonly libraryOptions?: Record<string, unknown> }) => Record<string, unknown>;
}

function nativeConverter(schema: StandardSchemaV1): StandardJsonSchemaConverter | undefined {
  const converter = (schema['~standard'] as { readonly jsonSchema?: unknown }).jsonSchema;
  if (typeof converter !== 'object' || converter === null) return undefined;
  const { input, output } = converter as Partial<StandardJsonSchemaConverter>;
  return typeof input === 'function' && typeof output === 'function' ? (converter as StandardJsonSchemaConverter) : undefined;
}

/** What converting one schema gave: a JSON Schema, and what could not be expressed in it. */
export interface ConvertedSchema {
  /** The JSON Schema as the converter made it (with its own `$schema`, `$defs` or `definitions`). */
  readonly schema: JsonObject;
  /** Why (part of) the schema is a fallback; empty when it converted cleanly. */
  readonly problems: readonly string[];
  /** `true` when nothing could be converted and `schema` is the documented fallback (any value). */
  readonly fallback: boolean;
}

/** The fallback for a schema that cannot be converted: any value, saying why. */
export function fallbackSchema(reason: string): JsonObject {
  return { description: `Not expressible in JSON Schema (${reason}); any value is shown here, the service validates it.` };
}

type ValibotToJsonSchema = (schema: unknown, config: Record<string, unknown>) => Record<string, unknown>;
let valibotConverter: Promise<ValibotToJsonSchema | undefined> | undefined;

/** `@valibot/to-json-schema`, an optional peer dependency, loaded the first time a valibot schema is met. */
function loadValibotConverter(): Promise<ValibotToJsonSchema | undefined> {
  valibotConverter ??= import('@valibot/to-json-schema').then(
    (module) => module.toJsonSchema as unknown as ValibotToJsonSchema,
    () => undefined,
  );
  return valibotConverter;
}

/**
 * Converts a Standard Schema to JSON Schema, never throwing:
 * - a vendor with `~standard.jsonSchema` (zod 4, arktype 2) converts itself; what it cannot
 *   express becomes `{}` (zod: `unrepresentable: 'any'`; arktype: its fallbacks keep the
 *   expressible base), and the reason is reported;
 * - valibot goes through `@valibot/to-json-schema` when it is installed (`errorMode: 'ignore'`
 *   after a first strict attempt names the reason);
 * - anything else, or a converter that throws, gives {@link fallbackSchema}.
 */
export async function convertSchema(schema: StandardSchemaV1, io: SchemaIo, target: SchemaTarget): Promise<ConvertedSchema> {
  const props = schema['~standard'];
  const native = nativeConverter(schema);
  if (native !== undefined) {
    if (props.vendor === 'arktype') return convertArktype(schema, native, io, target);
    return convertNative(native, io, target, props.vendor === 'zod' ? { unrepresentable: 'any' } : undefined);
  }
  if (props.vendor === 'valibot') {
    const toJsonSchema = await loadValibotConverter();
    if (toJsonSchema === undefined) {
      return failed('valibot schemas need the optional package @valibot/to-json-schema to be converted');
    }
    return convertValibot(toJsonSchema, schema, io, target);
  }
  return failed(`the ${props.vendor} schema has no Standard JSON Schema converter (~standard.jsonSchema)`);
}

function failed(reason: string): ConvertedSchema {
  return { schema: fallbackSchema(reason), problems: [reason], fallback: true };
}

function result(value: unknown, problems: readonly string[]): ConvertedSchema {
  if (!isJsonObject(value)) return failed('the converter returned no JSON Schema object');
  return { schema: value, problems, fallback: false };
}

/** Strict first; when that throws, once more with the vendor's lenient options, reporting the first error. */
function convertNative(
  converter: StandardJsonSchemaConverter,
  io: SchemaIo,
  target: SchemaTarget,
  lenient: Record<string, unknown> | undefined,
): ConvertedSchema {
  try {
    return result(converter[io]({ target }), []);
  } catch (error) {
    const reason = describeError(error);
    if (lenient === undefined) return failed(reason);
    try {
      return result(converter[io]({ target, libraryOptions: lenient }), [reason]);
    } catch (again) {
      return failed(describeError(again));
    }
  }
}

interface ArktypeFallbackContext {
  readonly code: string;
  readonly base: Record<string, unknown>;
  readonly proto?: { readonly name?: string };
}

/**
 * arktype's Standard JSON Schema converter never throws: it keeps the expressible base of a Date,
 * a morph or a predicate. The same fallbacks are passed here through `libraryOptions`, so each one
 * used is reported.
 */
function convertArktype(
  schema: StandardSchemaV1,
  converter: StandardJsonSchemaConverter,
  io: SchemaIo,
  target: SchemaTarget,
): ConvertedSchema {
  const problems: string[] = [];
  const fallback = (context: ArktypeFallbackContext): unknown => {
    const what = context.proto?.name === undefined ? context.code : `${context.code} (${context.proto.name})`;
    const problem = `arktype cannot express ${what} in JSON Schema`;
    if (!problems.includes(problem)) problems.push(problem);
    if (context.code === 'defaultValue') return undefined;
    if (context.code === 'arrayPostfix') {
      const { items, additionalItems: _additional, ...base } = context.base;
      return Array.isArray(items) ? { ...base, items } : base;
    }
    return context.base;
  };
  let converted: Record<string, unknown>;
  try {
    converted = converter[io]({ target, libraryOptions: { fallback } });
  } catch (error) {
    return failed(describeError(error));
  }
  // The output of a morph without a declared output type is `unknown` to arktype: `{}`, no fallback used.
  const transforms = (schema as { readonly internal?: { readonly includesTransform?: boolean } }).internal?.includesTransform === true;
  const { $schema: _dialect, ...body } = converted;
  if (io === 'output' && transforms && hasEmptySchema(body)) problems.push('arktype knows no output type of a morph (transform)');
  return result(converted, problems);
}

/** Whether a JSON Schema is, or has a member that is, `{}` (any value). */
function hasEmptySchema(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasEmptySchema);
  if (!isJsonObject(value)) return false;
  if (Object.keys(value).length === 0) return true;
  return Object.values(value).some(hasEmptySchema);
}

function convertValibot(toJsonSchema: ValibotToJsonSchema, schema: StandardSchemaV1, io: SchemaIo, target: SchemaTarget): ConvertedSchema {
  const config = { target, typeMode: io };
  try {
    return result(toJsonSchema(schema, { ...config, errorMode: 'throw' }), []);
  } catch (error) {
    const reason = describeError(error);
    try {
      return result(toJsonSchema(schema, { ...config, errorMode: 'ignore' }), [reason]);
    } catch (again) {
      return failed(describeError(again));
    }
  }
}
