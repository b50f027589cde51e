/**
 * The Standard Schema v1 interface (https://standardschema.dev), declared here so that the core
 * has no runtime dependency. zod, valibot, arktype and others implement it.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

export declare namespace StandardSchemaV1 {
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  export interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
}

export type InferInput<S extends StandardSchemaV1> = StandardSchemaV1.InferInput<S>;
export type InferOutput<S extends StandardSchemaV1> = StandardSchemaV1.InferOutput<S>;

/** One failing field, as reported over the wire (`errors` member of a validation problem). */
export interface FieldError {
  /** JSON Pointer (RFC 6901) to the failing value, "" for the root. */
  readonly pointer: string;
  readonly message: string;
}

export type ValidationResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: FieldError[] };

function escapePointerSegment(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Turns a Standard Schema issue path into a JSON Pointer. */
export function issuePointer(path: StandardSchemaV1.Issue['path']): string {
  if (!path || path.length === 0) return '';
  let pointer = '';
  for (const segment of path) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    pointer += `/${escapePointerSegment(String(key))}`;
  }
  return pointer;
}

function toResult<T>(result: StandardSchemaV1.Result<T>): ValidationResult<T> {
  if (result.issues) {
    return { ok: false, errors: result.issues.map((issue) => ({ pointer: issuePointer(issue.path), message: issue.message })) };
  }
  return { ok: true, value: result.value };
}

/**
 * Validates a value against a Standard Schema. Synchronous validators (the common case) are not
 * wrapped in a promise, which keeps the hot path of every call and message free of extra ticks.
 */
export function validate<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): ValidationResult<InferOutput<S>> | Promise<ValidationResult<InferOutput<S>>> {
  const result = schema['~standard'].validate(value) as
    | StandardSchemaV1.Result<InferOutput<S>>
    | Promise<StandardSchemaV1.Result<InferOutput<S>>>;
  if (result instanceof Promise) return result.then(toResult);
  return toResult(result);
}

/** Always-async form of {@link validate}. */
export async function validateAsync<S extends StandardSchemaV1>(schema: S, value: unknown): Promise<ValidationResult<InferOutput<S>>> {
  return validate(schema, value);
}

/**
 * The Standard JSON Schema extension (https://standardschema.dev): validators that can describe
 * their input and output as JSON Schema put a `jsonSchema` member next to `validate`.
 */
interface StandardJsonSchemaProps {
  readonly jsonSchema?: {
    readonly input?: (options: { readonly target: string }) => unknown;
  };
}

/**
 * The top-level property names of an object schema, read from its Standard JSON Schema description
 * (zod 4.2 or newer, arktype, and any validator that offers it); `undefined` when the validator
 * does not describe itself or the schema is not an object with `properties`.
 */
export function schemaPropertyNames(schema: StandardSchemaV1): string[] | undefined {
  const describe = (schema['~standard'] as StandardSchemaV1.Props & StandardJsonSchemaProps).jsonSchema?.input;
  if (typeof describe !== 'function') return undefined;
  let json: unknown;
  try {
    json = describe({ target: 'draft-2020-12' });
  } catch {
    return undefined;
  }
  const properties = (json as { properties?: unknown } | null)?.properties;
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return undefined;
  return Object.keys(properties);
}
