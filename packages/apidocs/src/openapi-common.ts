import type { ErrorCode } from '@switchboard/core';
import { errorRegistry } from '@switchboard/core';
import type { SchemaComponents } from './components.js';
import type { JsonObject } from './json.js';
import { PROBLEM_MEDIA_TYPE, problemSchema, registryProblem } from './problems.js';

export const JSON_MEDIA_TYPE = 'application/json';

/** What every OpenAPI part of one document shares: the components being filled in. */
export interface OpenApiParts {
  readonly schemas: SchemaComponents;
  readonly parameters: Record<string, JsonObject>;
  readonly headers: Record<string, JsonObject>;
}

const PARAMETERS: Readonly<Record<string, JsonObject>> = {
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    description:
      'Makes a retry safe: the same key with the same body gets the stored answer again (`Idempotent-Replayed: true`); the same key with another body gets 422.',
    schema: { type: 'string', minLength: 1, maxLength: 255 },
  },
  Timeout: {
    name: 'Switchboard-Timeout-Ms',
    in: 'header',
    description: "The caller's remaining budget in milliseconds, counted from the request's arrival; the operation's `timeoutMs` caps it.",
    schema: { type: 'string', pattern: '^\\d{1,15}$' },
  },
  Traceparent: {
    name: 'traceparent',
    in: 'header',
    description: 'W3C Trace Context; the handler continues this trace.',
    schema: { type: 'string', pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' },
  },
  Tracestate: { name: 'tracestate', in: 'header', description: 'W3C Trace Context, passed through.', schema: { type: 'string' } },
  Prefer: {
    name: 'Prefer',
    in: 'header',
    description:
      'RFC 7240. `respond-async` runs the call as a job (202 + status monitor); `wait=N` lets a job that finishes within N seconds answer inline.',
    schema: { type: 'string' },
    examples: { async: { value: 'respond-async' }, asyncOrInline: { value: 'respond-async, wait=5' } },
  },
  Callback: {
    name: 'Switchboard-Callback',
    in: 'header',
    description:
      'URL (on the allow-list) that receives a signed Standard Webhooks notice when the job finishes. Only on calls that run as jobs.',
    schema: { type: 'string', format: 'uri' },
  },
  JobId: {
    name: 'id',
    in: 'path',
    required: true,
    description: 'The job id: 128 random bits, base64url.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,64}$' },
  },
  Wait: {
    name: 'wait',
    in: 'query',
    description:
      'Long-poll: hold the answer until the job changes from the version in `If-None-Match` (or the current one), at most this many seconds.',
    schema: { type: 'integer', minimum: 0 },
  },
  PreferWait: {
    name: 'Prefer',
    in: 'header',
    description: '`wait=N`: the same long-poll as `?wait=N`.',
    schema: { type: 'string' },
  },
  IfNoneMatch: {
    name: 'If-None-Match',
    in: 'header',
    description: 'The `ETag` the caller knows: 304 when nothing changed; with `wait`, the version to wait for a change from.',
    schema: { type: 'string' },
  },
  MessageId: {
    name: 'messageId',
    in: 'path',
    required: true,
    description: 'The MessageId (the CloudEvents `id`) returned when the message was sent.',
    schema: { type: 'string', minLength: 1 },
  },
  ReceiptWait: {
    name: 'wait',
    in: 'query',
    description: 'Long-poll: wait until every consumer group (or `group`) reached a final state, at most this many seconds (capped at 30).',
    schema: { type: 'number', minimum: 0 },
  },
  ReceiptGroup: {
    name: 'group',
    in: 'query',
    description: 'With `wait`: the consumer group to wait for.',
    schema: { type: 'string' },
  },
};

const HEADERS: Readonly<Record<string, JsonObject>> = {
  RetryAfter: { description: 'Seconds to wait before asking again.', schema: { type: 'integer', minimum: 1 } },
  Location: { description: 'The status monitor of the job, or where to go next.', schema: { type: 'string' } },
  ContentLocation: { description: 'The resource the body describes.', schema: { type: 'string' } },
  PreferenceApplied: {
    description: 'RFC 7240: which preference was honoured (`respond-async`, `wait=N`).',
    schema: { type: 'string' },
  },
  ETag: { description: 'Strong entity tag of the job: its version.', schema: { type: 'string' } },
  CacheControl: { schema: { type: 'string' } },
  IdempotentReplayed: {
    description: '`true` when the answer is the one stored for this `Idempotency-Key`.',
    schema: { type: 'string', enum: ['true'] },
  },
  Allow: { description: 'The methods the path takes.', schema: { type: 'string' } },
  Connection: { description: '`close`: the connection is closed after this answer.', schema: { type: 'string' } },
};

export function parameter(parts: OpenApiParts, name: keyof typeof PARAMETERS & string): JsonObject {
  parts.parameters[name] ??= PARAMETERS[name] as JsonObject;
  return { $ref: `#/components/parameters/${name}` };
}

export function header(parts: OpenApiParts, name: keyof typeof HEADERS & string): JsonObject {
  parts.headers[name] ??= HEADERS[name] as JsonObject;
  return { $ref: `#/components/headers/${name}` };
}

interface ResponseEntry {
  readonly descriptions: string[];
  readonly content: Map<string, JsonObject[]>;
  readonly headers: Record<string, JsonObject>;
}

/**
 * The responses of one operation, collected by status: several problems of one status become
 * `oneOf` the problem schemas (each fixes its `code`, so exactly one matches).
 */
export class ResponseSet {
  readonly #parts: OpenApiParts;
  readonly #byStatus = new Map<string, ResponseEntry>();

  constructor(parts: OpenApiParts) {
    this.#parts = parts;
  }

  #entry(status: string): ResponseEntry {
    let entry = this.#byStatus.get(status);
    if (entry === undefined) {
      entry = { descriptions: [], content: new Map(), headers: {} };
      this.#byStatus.set(status, entry);
    }
    return entry;
  }

  /** A response body (or none, with `schema` undefined) for a status. */
  add(
    status: number | 'default',
    description: string,
    content?: Readonly<Record<string, JsonObject>>,
    headers: Readonly<Record<string, JsonObject>> = {},
  ): this {
    const entry = this.#entry(String(status));
    if (!entry.descriptions.includes(description)) entry.descriptions.push(description);
    for (const [mediaType, schema] of Object.entries(content ?? {})) {
      const schemas = entry.content.get(mediaType) ?? [];
      if (!schemas.some((known) => JSON.stringify(known) === JSON.stringify(schema))) schemas.push(schema);
      entry.content.set(mediaType, schemas);
    }
    Object.assign(entry.headers, headers);
    return this;
  }

  /** A registry problem, with the headers the server sends with it. */
  problem(code: ErrorCode, headers: Readonly<Record<string, JsonObject>> = {}): this {
    const entry = errorRegistry[code];
    const extra: Record<string, JsonObject> = { ...headers };
    if (code === 'SB_OVERLOADED' || code === 'SB_STORE_UNAVAILABLE' || code === 'SB_IDEMPOTENCY_IN_PROGRESS') {
      extra['Retry-After'] = header(this.#parts, 'RetryAfter');
    }
    if (code === 'SB_BODY_TOO_LARGE' || code === 'SB_REQUEST_TIMEOUT') extra.Connection = header(this.#parts, 'Connection');
    return this.add(
      entry.status,
      `${entry.title} (\`${code}\`)`,
      { [PROBLEM_MEDIA_TYPE]: registryProblem(this.#parts.schemas, code) },
      extra,
    );
  }

  problems(codes: readonly ErrorCode[]): this {
    for (const code of codes) this.problem(code);
    return this;
  }

  /** Any other problem (a `SwitchboardError` a handler threw, a proxy in between...). */
  otherProblems(): this {
    return this.add('default', 'Any other error, as a problem document', {
      [PROBLEM_MEDIA_TYPE]: problemSchema(this.#parts.schemas),
    });
  }

  toObject(): JsonObject {
    const statuses = [...this.#byStatus.keys()].sort((a, b) => (a === 'default' ? 1 : b === 'default' ? -1 : Number(a) - Number(b)));
    const out: JsonObject = {};
    for (const status of statuses) {
      const entry = this.#byStatus.get(status) as ResponseEntry;
      const response: JsonObject = { description: entry.descriptions.join('; ') };
      if (Object.keys(entry.headers).length > 0) response.headers = entry.headers;
      if (entry.content.size > 0) {
        const content: JsonObject = {};
        for (const [mediaType, schemas] of entry.content) {
          content[mediaType] = { schema: schemas.length === 1 ? schemas[0] : { oneOf: schemas } };
        }
        response.content = content;
      }
      out[status] = response;
    }
    return out;
  }
}

/** `{base}`, normalised as `createHttpService` does (`''` or `/api`, no trailing slash). */
export function normaliseBase(base: string | undefined): string {
  if (base === undefined || base === '' || base === '/') return '';
  const withSlash = base.startsWith('/') ? base : `/${base}`;
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}

/** A route path relative to `{base}`, with a leading slash and no trailing one. */
export function routePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.length > 1 && withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}
