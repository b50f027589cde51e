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
  readonly events: Evts;
  readonly description?: string;
}

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

export function defineContract<
  const N extends string,
  Ops extends Operations = Record<never, never>,
  Msgs extends Messages = Record<never, never>,
  Evts extends Events = Record<never, never>,
>(definition: {
  name: N;
  version?: string;
  operations?: Ops;
  messages?: Msgs;
  events?: Evts;
  description?: string;
}): Contract<N, Ops, Msgs, Evts> {
  assertName('contract', definition.name, NAME);
  for (const name of Object.keys(definition.operations ?? {})) assertName('operation', name, OPERATION_NAME);
  for (const name of Object.keys(definition.messages ?? {})) assertName('message', name, NAME);
  for (const name of Object.keys(definition.events ?? {})) assertName('event', name, NAME);
  return {
    kind: 'contract',
    name: definition.name,
    version: definition.version ?? '1',
    operations: (definition.operations ?? {}) as Ops,
    messages: (definition.messages ?? {}) as Msgs,
    events: (definition.events ?? {}) as Evts,
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
