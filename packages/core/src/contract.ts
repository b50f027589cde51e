import type { InferInput, InferOutput, StandardSchemaV1 } from './standard-schema.js';

/** A domain error that an operation declares; it travels as `application/problem+json` with this status. */
export interface ErrorDeclaration<D extends StandardSchemaV1 | undefined = StandardSchemaV1 | undefined> {
  readonly status: number;
  readonly title?: string;
  /** Schema of the error's `data` member, when the error carries structured details. */
  readonly data?: D;
  readonly retryable?: boolean;
}

export type ErrorDeclarations = Readonly<Record<string, ErrorDeclaration>>;

/**
 * How an operation may be invoked over HTTP.
 * - `sync`: answers inline only.
 * - `async`: always runs as a job (202 Accepted + status monitor).
 * - `either` (default): inline, unless the caller sends `Prefer: respond-async`.
 */
export type OperationMode = 'sync' | 'async' | 'either';

export interface OperationDefinition<
  I extends StandardSchemaV1 = StandardSchemaV1,
  O extends StandardSchemaV1 = StandardSchemaV1,
  E extends ErrorDeclarations = ErrorDeclarations,
> {
  readonly kind: 'operation';
  readonly input: I;
  readonly output: O;
  readonly errors: E;
  /** Safe to retry without an Idempotency-Key (the client retries it on transient failures). */
  readonly idempotent: boolean;
  readonly mode: OperationMode;
  /** Server-side time limit for one run of the handler, in milliseconds. */
  readonly timeoutMs?: number;
  /**
   * Scopes a caller must hold (every one) when the service requires authentication: over HTTP a
   * principal without them is answered 403 `SB_FORBIDDEN`. The server's `auth.scopes` overrides them.
   */
  readonly scopes?: readonly string[];
  readonly description?: string;
}

export interface MessageDefinition<S extends StandardSchemaV1 = StandardSchemaV1> {
  readonly kind: 'message';
  readonly schema: S;
  readonly description?: string;
}

export interface EventDefinition<S extends StandardSchemaV1 | undefined = StandardSchemaV1 | undefined> {
  readonly kind: 'event';
  /** Small data the event may carry; `undefined` for a payload-free event (the default). */
  readonly data: S;
  /** Whether the event may carry a claim-checked attachment (a picture, a file). */
  readonly attachment: boolean;
  /**
   * `at-most-once`: the event may travel fire-and-forget (an at-most-once broker, no inbox, receipts
   * or retries) where the messaging layer is given one. Absent: the default, at-least-once.
   */
  readonly delivery?: EventDelivery;
  readonly description?: string;
}

/** How an event is delivered: reliably (the default) or fire-and-forget. */
export type EventDelivery = 'at-least-once' | 'at-most-once';

export type Operations = Readonly<Record<string, OperationDefinition>>;
export type Messages = Readonly<Record<string, MessageDefinition>>;
export type Events = Readonly<Record<string, EventDefinition>>;

export interface Contract<
  N extends string = string,
  Ops extends Operations = Operations,
  Msgs extends Messages = Messages,
  Evts extends Events = Events,
> {
  readonly kind: 'contract';
  /** The service's name; it is the CloudEvents `source` of what the service publishes and the base of its topics. */
  readonly name: N;
  readonly version: string;
  readonly operations: Ops;
  readonly messages: Msgs;
  /** Every event, those declared by `changes` included. */
  readonly events: Evts;
  /** Tables whose committed row changes are published as the contract's events (see `changes`). */
  readonly changes: readonly ChangeDefinition[];
  readonly description?: string;
}

/** What happened to a row. */
export type ChangeOperation = 'insert' | 'update' | 'delete';

/**
 * A table whose committed row changes become events of the contract: `insert` and `update` events
 * carry the row (typed by `columns`), `delete` events the row's key (typed by the `key` columns of
 * `columns`). A change source (e.g. `@switchboard/changes` on PostgreSQL logical replication) reads
 * the declarations and publishes the events; receivers subscribe to them like any other event.
 */
export interface ChangeDefinition<
  S extends StandardSchemaV1 = StandardSchemaV1,
  K extends string = string,
  I extends string = string,
  U extends string = string,
  D extends string = string,
> {
  readonly kind: 'changes';
  /** The table as declared: `orders` or `sales.orders`. */
  readonly table: string;
  /** Its schema (namespace): the part before the dot, else `public`. */
  readonly schema: string;
  /** Its name without the schema. */
  readonly name: string;
  /** Standard Schema of one row (column name → value), as the change source delivers it. */
  readonly columns: S;
  /** The columns that identify a row: the events' `subject` and ordering key. */
  readonly key: readonly K[];
  /** Event name per operation; an operation without one is not published. */
  readonly events: { readonly insert?: I; readonly update?: U; readonly delete?: D };
  readonly description?: string;
}

/** The key columns of a row schema, as a Standard Schema of their own (the data of `delete` events). */
export type KeySchema<S extends StandardSchemaV1, K extends string> = StandardSchemaV1<
  Pick<InferInput<S>, K & keyof InferInput<S>>,
  Pick<InferOutput<S>, K & keyof InferOutput<S>>
>;

/** The events a `changes` declaration adds to its contract. */
export type ChangeEvents<C> =
  C extends ChangeDefinition<infer S, infer K, infer I, infer U, infer D>
    ? { readonly [P in I | U]: EventDefinition<S> } & { readonly [P in D]: EventDefinition<KeySchema<S, K>> }
    : never;

type UnionToIntersection<U> = (U extends unknown ? (arg: U) => void : never) extends (arg: infer I) => void ? I : never;

/** The events of every `changes` declaration of a contract, merged. */
export type ChangeEventsOf<Chs extends readonly object[]> = [Chs[number]] extends [never]
  ? Record<never, never>
  : UnionToIntersection<ChangeEvents<Chs[number]>>;

/** Column names of a row schema. */
export type ColumnName<S extends StandardSchemaV1> = keyof InferOutput<S> & string;

const NAME = /^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*$/;
const OPERATION_NAME = /^[a-zA-Z][a-zA-Z0-9_-]*$/;

function assertName(kind: string, name: string, pattern: RegExp): void {
  if (!pattern.test(name)) {
    throw new TypeError(`Invalid ${kind} name "${name}": it must match ${pattern}`);
  }
}

export function operation<
  I extends StandardSchemaV1,
  O extends StandardSchemaV1,
  const E extends ErrorDeclarations = Record<never, never>,
>(definition: {
  input: I;
  output: O;
  errors?: E;
  idempotent?: boolean;
  mode?: OperationMode;
  timeoutMs?: number;
  scopes?: readonly string[];
  description?: string;
}): OperationDefinition<I, O, NoInfer<E>> {
  return {
    kind: 'operation',
    input: definition.input,
    output: definition.output,
    errors: (definition.errors ?? {}) as E,
    idempotent: definition.idempotent ?? false,
    mode: definition.mode ?? 'either',
    ...(definition.timeoutMs === undefined ? {} : { timeoutMs: definition.timeoutMs }),
    ...(definition.scopes === undefined ? {} : { scopes: [...definition.scopes] }),
    ...(definition.description === undefined ? {} : { description: definition.description }),
  };
}

export function message<S extends StandardSchemaV1>(definition: { schema: S; description?: string }): MessageDefinition<S> {
  return {
    kind: 'message',
    schema: definition.schema,
    ...(definition.description === undefined ? {} : { description: definition.description }),
  };
}

export function event(): EventDefinition<undefined>;
export function event<S extends StandardSchemaV1 | undefined = undefined>(definition: {
  data?: S;
  attachment?: boolean;
  delivery?: EventDelivery;
  description?: string;
}): EventDefinition<S>;
export function event(
  definition: { data?: StandardSchemaV1; attachment?: boolean; delivery?: EventDelivery; description?: string } = {},
): EventDefinition<StandardSchemaV1 | undefined> {
  return {
    kind: 'event',
    data: definition.data,
    attachment: definition.attachment ?? false,
    ...(definition.delivery === undefined || definition.delivery === 'at-least-once' ? {} : { delivery: definition.delivery }),
    ...(definition.description === undefined ? {} : { description: definition.description }),
  };
}

const TABLE = /^[^.\s"]+(\.[^.\s"]+)?$/;

/**
 * Declares that committed changes of `table` (`orders`, or schema-qualified `sales.orders`, as the
 * catalog spells them) become events of the contract:
 *
 * ```ts
 * changes('orders', {
 *   columns: z.object({ id: z.number(), total: z.string(), status: z.string() }),
 *   key: 'id',
 *   insert: 'order.created', // data: the new row
 *   update: 'order.updated', // data: the row after the update
 *   delete: 'order.deleted', // data: { id }
 * })
 * ```
 *
 * Pass the result in `defineContract({ changes: [...] })`; the events are added to the contract's
 * `events`, typed from `columns`. `key` names the columns that identify a row (the primary key, or
 * the replica identity): they become the events' `subject` and ordering key, and a `delete` carries
 * them only.
 */
export function changes<
  S extends StandardSchemaV1,
  const K extends ColumnName<S>,
  const I extends string = never,
  const U extends string = never,
  const D extends string = never,
>(
  table: string,
  definition: {
    columns: S;
    key: K | readonly K[];
    insert?: I;
    update?: U;
    delete?: D;
    description?: string;
  },
): ChangeDefinition<S, K, I, U, D> {
  if (typeof table !== 'string' || !TABLE.test(table)) {
    throw new TypeError(`Invalid table "${table}" in changes(): give "table" or "schema.table" as the catalog spells them`);
  }
  const key = (typeof definition.key === 'string' ? [definition.key] : [...(definition.key as readonly K[])]) as K[];
  if (key.length === 0 || key.some((column) => typeof column !== 'string' || column === '')) {
    throw new TypeError(`changes('${table}'): \`key\` must name at least one column`);
  }
  if (new Set(key).size !== key.length) throw new TypeError(`changes('${table}'): \`key\` names a column twice`);
  if (typeof definition.columns?.['~standard']?.validate !== 'function') {
    throw new TypeError(`changes('${table}'): \`columns\` must be a Standard Schema of the row`);
  }
  const events: { insert?: I; update?: U; delete?: D } = {};
  for (const operation of ['insert', 'update', 'delete'] as const) {
    const name = definition[operation];
    if (name === undefined) continue;
    assertName('event', name, NAME);
    (events as Record<ChangeOperation, string>)[operation] = name;
  }
  if (Object.keys(events).length === 0) {
    throw new TypeError(`changes('${table}'): name the event of at least one of insert, update, delete`);
  }
  const dot = table.indexOf('.');
  return {
    kind: 'changes',
    table,
    schema: dot === -1 ? 'public' : table.slice(0, dot),
    name: dot === -1 ? table : table.slice(dot + 1),
    columns: definition.columns,
    key,
    events,
    ...(definition.description === undefined ? {} : { description: definition.description }),
  };
}

/**
 * A Standard Schema of the key columns of a row: an object with a string, number or boolean for
 * each key column (the data of a `delete` event). Other members are dropped.
 */
export function keySchema<S extends StandardSchemaV1, K extends string>(key: readonly K[]): KeySchema<S, K> {
  return {
    '~standard': {
      version: 1,
      vendor: 'switchboard',
      validate(value: unknown) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          return { issues: [{ message: 'expected an object with the key columns', path: [] }] };
        }
        const out: Record<string, unknown> = {};
        const issues: StandardSchemaV1.Issue[] = [];
        for (const column of key) {
          const v = (value as Record<string, unknown>)[column];
          if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[column] = v;
          else issues.push({ message: 'key column missing or not a string, number or boolean', path: [column] });
        }
        return issues.length > 0 ? { issues } : { value: out as never };
      },
    },
  };
}

/** The event definitions a `changes` declaration adds to its contract. */
function changeEvents(definition: ChangeDefinition): Record<string, EventDefinition> {
  const out: Record<string, EventDefinition> = {};
  const { insert, update, delete: remove } = definition.events;
  const row = event({ data: definition.columns, description: `a row of ${definition.table}` });
  if (insert !== undefined) out[insert] = { ...row, description: `a row inserted into ${definition.table}` };
  if (update !== undefined) out[update] = { ...row, description: `a row of ${definition.table} after an update` };
  if (remove !== undefined) {
    out[remove] = event({ data: keySchema(definition.key), description: `the key of a row deleted from ${definition.table}` });
  }
  return out;
}

export function defineContract<
  const N extends string,
  Ops extends Operations = Record<never, never>,
  Msgs extends Messages = Record<never, never>,
  Evts extends Events = Record<never, never>,
  // Not `readonly ChangeDefinition[]`: that contextual type would widen the declarations' event names to `string`.
  const Chs extends readonly object[] = [],
>(definition: {
  name: N;
  version?: string;
  operations?: Ops;
  messages?: Msgs;
  events?: Evts;
  /** Tables whose row changes become events (`changes('orders', {...})`); their events join `events`. */
  changes?: Chs;
  description?: string;
}): Contract<N, Ops, Msgs, Evts & ChangeEventsOf<Chs>> {
  assertName('contract', definition.name, NAME);
  for (const name of Object.keys(definition.operations ?? {})) assertName('operation', name, OPERATION_NAME);
  for (const name of Object.keys(definition.messages ?? {})) assertName('message', name, NAME);
  for (const name of Object.keys(definition.events ?? {})) assertName('event', name, NAME);
  const events: Record<string, EventDefinition> = { ...(definition.events ?? {}) };
  const tables = new Set<string>();
  const declarations = (definition.changes ?? []) as readonly ChangeDefinition[];
  for (const declaration of declarations) {
    if (declaration?.kind !== 'changes') throw new TypeError('`changes` takes declarations made with changes()');
    const table = `${declaration.schema}.${declaration.name}`;
    if (tables.has(table)) throw new TypeError(`Table ${table} is declared twice in the changes of contract ${definition.name}`);
    tables.add(table);
    for (const [name, entry] of Object.entries(changeEvents(declaration))) {
      if (Object.hasOwn(events, name)) {
        throw new TypeError(`Event ${name} of contract ${definition.name} is declared twice (in events or changes)`);
      }
      events[name] = entry;
    }
  }
  return {
    kind: 'contract',
    name: definition.name,
    version: definition.version ?? '1',
    operations: (definition.operations ?? {}) as Ops,
    messages: (definition.messages ?? {}) as Msgs,
    events: events as Evts & ChangeEventsOf<Chs>,
    changes: [...declarations],
    ...(definition.description === undefined ? {} : { description: definition.description }),
  };
}

// ---------------------------------------------------------------------------------------------
// Type inference helpers. Callers see the schema's *input* type; handlers see its *output* type
// (after defaults and transforms); handlers return the output schema's input type.

export type AnyContract = Contract<string, Operations, Messages, Events>;

export type OperationName<C extends AnyContract> = keyof C['operations'] & string;
export type MessageName<C extends AnyContract> = keyof C['messages'] & string;
export type EventName<C extends AnyContract> = keyof C['events'] & string;

/** What a caller passes to an operation. */
export type CallInput<C extends AnyContract, K extends OperationName<C>> = InferInput<C['operations'][K]['input']>;
/** What a caller gets back from an operation. */
export type CallOutput<C extends AnyContract, K extends OperationName<C>> = InferOutput<C['operations'][K]['output']>;
/** What a handler receives. */
export type HandlerInput<C extends AnyContract, K extends OperationName<C>> = InferOutput<C['operations'][K]['input']>;
/** What a handler returns. */
export type HandlerOutput<C extends AnyContract, K extends OperationName<C>> = InferInput<C['operations'][K]['output']>;

export type OperationErrorCode<C extends AnyContract, K extends OperationName<C>> = keyof C['operations'][K]['errors'] & string;
export type OperationErrorData<
  C extends AnyContract,
  K extends OperationName<C>,
  E extends OperationErrorCode<C, K>,
> = C['operations'][K]['errors'][E]['data'] extends StandardSchemaV1 ? InferOutput<C['operations'][K]['errors'][E]['data']> : undefined;

/** What a sender passes for a message. */
export type MessageInput<C extends AnyContract, K extends MessageName<C>> = InferInput<C['messages'][K]['schema']>;
/** What a message handler receives. */
export type MessageData<C extends AnyContract, K extends MessageName<C>> = InferOutput<C['messages'][K]['schema']>;

export type EventInput<C extends AnyContract, K extends EventName<C>> = C['events'][K]['data'] extends StandardSchemaV1
  ? InferInput<C['events'][K]['data']>
  : undefined;
export type EventData<C extends AnyContract, K extends EventName<C>> = C['events'][K]['data'] extends StandardSchemaV1
  ? InferOutput<C['events'][K]['data']>
  : undefined;

/** How the handler was reached. The same handler serves every pattern. */
export type Invocation = 'http' | 'job' | 'message';

export interface Progress {
  /** 0 to 100. */
  readonly percent?: number;
  readonly message?: string;
}

/** What every operation handler receives besides its input, whichever pattern reached it. */
export interface HandlerContext {
  readonly operation: string;
  readonly via: Invocation;
  /** Aborted when the deadline passes, the job is canceled, or the server shuts down. */
  readonly signal: AbortSignal;
  /** Absolute deadline (epoch milliseconds), when the caller or the operation set one. */
  readonly deadline?: number;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly idempotencyKey?: string;
  /** Set when running as an asynchronous job. */
  readonly jobId?: string;
  /** Set when reached through a broker. */
  readonly messageId?: string;
  /** Request headers (lower-case names), when reached over HTTP. */
  readonly headers?: Readonly<Record<string, string | undefined>>;
  /** Authenticated caller identity, when auth is configured. */
  readonly principal?: string;
  /** Reports progress; visible on the job's status monitor. A no-op outside jobs. */
  progress(progress: Progress): void;
}

export type OperationHandler<C extends AnyContract, K extends OperationName<C>> = (
  input: HandlerInput<C, K>,
  context: HandlerContext,
) => HandlerOutput<C, K> | Promise<HandlerOutput<C, K>>;

/** The implementation of every operation of a contract. */
export type Handlers<C extends AnyContract> = { readonly [K in OperationName<C>]: OperationHandler<C, K> };

/** Identity helper that checks an implementation against its contract. */
export function implement<C extends AnyContract>(_contract: C, handlers: Handlers<C>): Handlers<C> {
  return handlers;
}
