import type { StandardSchemaV1 } from '@switchboard/core';
import type { JsonObject } from './json.js';
import { canonicalJson, isJsonObject, pointerSegment } from './json.js';
import type { SchemaIo, SchemaTarget } from './schema.js';
import { convertSchema } from './schema.js';

/** Something in a contract that could not be expressed exactly; the document shows a fallback there. */
export interface DocumentWarning {
  /** JSON Pointer (as a URI fragment) to the schema in the document, e.g. `#/components/schemas/service-b.save.Input`. */
  readonly pointer: string;
  /** What the schema belongs to, e.g. `service-b operation save input`. */
  readonly subject: string;
  readonly message: string;
}

const NAME_CHARACTERS = /[^A-Za-z0-9._-]/g;

/** A component name both OpenAPI 3.1 and AsyncAPI 3.0 accept (`^[a-zA-Z0-9.\-_]+$`). */
export function componentName(name: string): string {
  const cleaned = name.replace(NAME_CHARACTERS, '_');
  return cleaned === '' ? '_' : cleaned;
}

/**
 * The `components.schemas` of one document. Every contract schema is converted once, its `$defs`
 * (or draft-07 `definitions`) hoisted into components beside it, and every local `$ref` rewritten
 * to point there (`#` of a recursive schema included), so the references resolve inside the
 * document. Identical schemas under one name are stored once.
 */
export class SchemaComponents {
  readonly schemas: Record<string, JsonObject> = {};
  readonly warnings: DocumentWarning[] = [];
  readonly #prefix: string;
  readonly #target: SchemaTarget;
  readonly #converted = new Map<string, JsonObject>();

  constructor(target: SchemaTarget, prefix = '#/components/schemas/') {
    this.#target = target;
    this.#prefix = prefix;
  }

  ref(name: string): JsonObject {
    return { $ref: this.#prefix + pointerSegment(name) };
  }

  /** Adds a hand-written schema (problem documents, the job status document...) once. */
  define(name: string, schema: JsonObject): JsonObject {
    this.schemas[name] ??= schema;
    return this.ref(name);
  }

  /** Converts a contract schema into a component named `name` and answers a `$ref` to it. */
  async add(name: string, schema: StandardSchemaV1, io: SchemaIo, subject: string): Promise<JsonObject> {
    const cacheKey = `${io}\u0000${name}`;
    const known = this.#converted.get(cacheKey);
    if (known !== undefined) return known;
    const converted = await convertSchema(schema, io, this.#target);
    const stored = this.#hoist(componentName(name), converted.schema);
    const ref = this.ref(stored);
    const body = this.schemas[stored] as JsonObject;
    if (converted.problems.length > 0) {
      const note = converted.fallback
        ? undefined
        : `Parts of this schema cannot be expressed in JSON Schema (${converted.problems.join('; ')}); they accept any value here.`;
      if (note !== undefined) body.description = typeof body.description === 'string' ? `${body.description} ${note}` : note;
      for (const message of converted.problems) {
        this.warnings.push({ pointer: ref.$ref as string, subject, message });
      }
    }
    this.#converted.set(cacheKey, ref);
    return ref;
  }

  /** Stores a converted schema and its definitions; answers the component name of the root. */
  #hoist(name: string, converted: JsonObject): string {
    const { $schema: _dialect, $id: _id, $defs, definitions, ...root } = converted;
    const defs = { ...(isJsonObject(definitions) ? definitions : {}), ...(isJsonObject($defs) ? $defs : {}) };
    const rename = new Map<string, string>();
    // Names a converter made up (zod's `__schema0` for a cycle) belong to this schema alone.
    for (const key of Object.keys(defs)) rename.set(key, componentName(/^__schema\d+$/.test(key) ? `${name}.${key.slice(2)}` : key));
    const rewrite = (value: unknown, own: string): unknown => rewriteRefs(value, own, rename, this.#prefix);
    // Definitions first, so a shared definition (a zod `.meta({ id })`) keeps its plain name
    // when every schema that uses it defines it the same way.
    for (const [key, definition] of Object.entries(defs)) {
      const wanted = rename.get(key) as string;
      const body = rewrite(definition, wanted) as JsonObject;
      const existing = this.schemas[wanted];
      if (existing === undefined || canonicalJson(existing) === canonicalJson(body)) {
        this.schemas[wanted] = body;
        continue;
      }
      // Another schema uses the same definition name for something else: keep this one apart.
      const own = componentName(`${name}.${key}`);
      rename.set(key, own);
      this.schemas[own] = rewrite(definition, own) as JsonObject;
    }
    const unique = this.#free(name, rewrite(root, name) as JsonObject);
    this.schemas[unique] = rewrite(root, unique) as JsonObject;
    return unique;
  }

  /** `name`, or `name_2`, `name_3`... when `name` is taken by a different schema. */
  #free(name: string, body: JsonObject): string {
    let candidate = name;
    for (let n = 2; this.schemas[candidate] !== undefined && canonicalJson(this.schemas[candidate]) !== canonicalJson(body); n++) {
      candidate = `${name}_${n}`;
    }
    return candidate;
  }
}

/**
 * Rewrites the local references of one converted schema: `#/$defs/X...` and `#/definitions/X...`
 * to X's component, and any other `#...` (the root, for recursion) to the schema's own component.
 */
function rewriteRefs(value: unknown, own: string, rename: ReadonlyMap<string, string>, prefix: string): unknown {
  if (Array.isArray(value)) return value.map((item) => rewriteRefs(item, own, rename, prefix));
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === '$ref' && typeof child === 'string' && child.startsWith('#')) {
      out[key] = rewriteRef(child, own, rename, prefix);
    } else {
      out[key] = rewriteRefs(child, own, rename, prefix);
    }
  }
  return out;
}

function rewriteRef(ref: string, own: string, rename: ReadonlyMap<string, string>, prefix: string): string {
  const match = /^#\/(\$defs|definitions)\/([^/]+)(.*)$/.exec(ref);
  if (match !== null) {
    const key = (match[2] as string).replaceAll('~1', '/').replaceAll('~0', '~');
    const target = rename.get(key);
    if (target !== undefined) return `${prefix}${pointerSegment(target)}${match[3] ?? ''}`;
  }
  return `${prefix}${pointerSegment(own)}${ref.slice(1)}`;
}
