import diagnosticsChannel, { type Channel, type TracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { Invocation } from './contract.js';

/**
 * Switchboard's `node:diagnostics_channel`s. The core and the packages publish; observers (the
 * OpenTelemetry bridge, the metrics registry, loggers, the dashboard) subscribe, so no package
 * imports a tracing library. Nothing is built, timed or published while a channel has no
 * subscriber: every site checks `hasSubscribers` first.
 *
 * Operations that take time are `TracingChannel`s (`tracing:<name>:start|end|asyncStart|asyncEnd|error`,
 * one context object shared by the five events). The publisher fills `outcome`, `durationMs` and
 * the result fields on that object before `asyncEnd`, so a subscriber reads everything there;
 * `error` is published (before `asyncEnd`) only when the operation rejected, while `context.error`
 * is also set for failures that resolve (a handler's declared error, an HTTP 503). End spans on
 * `asyncEnd`, once. Instantaneous facts are plain channels. `docs/diagnostics.md` lists them all.
 */

/** `ok`: succeeded; `error`: failed (see `error` and `errorType`). */
export type TraceOutcome = 'ok' | 'error';

/** Fields every traced context carries once it ended. */
export interface Ended {
  outcome?: TraceOutcome;
  /** Milliseconds from `start` to `asyncEnd`, measured by the publisher (`performance.now()`). */
  durationMs?: number;
  /** What failed: a thrown value, a `SwitchboardError`, an `OperationError`. */
  error?: unknown;
  /** Low-cardinality failure class: an error code (`SB_TIMEOUT`, a declared code), an HTTP status, an exception name. */
  errorType?: string;
}

/** `switchboard:handler`: an operation's handler, however it was reached. */
export interface HandlerMessage extends Ended {
  /** Contract name. */
  readonly service: string;
  readonly operation: string;
  readonly via: Invocation;
  /** The handler's own context (`HandlerContext.traceparent`): what the calls and sends it makes descend from. */
  readonly traceparent: string | undefined;
  /** What it was reached with: the HTTP request's `traceparent` header, the job's submit, the message's creation context. */
  readonly parentTraceparent: string | undefined;
  /** HTTP route template (`{basePath}/ops/{operation}`), when reached over HTTP. */
  readonly route: string | undefined;
  readonly tracestate: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** Set when run as a job. */
  readonly jobId: string | undefined;
  /** Set when reached through a broker (the CloudEvent id). */
  readonly messageId: string | undefined;
  /** Delivery or job attempt, 1-based. */
  readonly attempt: number;
  /** The `HandlerContext` the handler receives. */
  readonly context: unknown;
  /** HTTP status the outcome maps to (200, or the problem's status), set at the end. */
  status?: number;
}

/** `switchboard:call`: one typed client call, from its first attempt to its answer. */
export interface CallMessage extends Ended {
  readonly service: string;
  readonly operation: string;
  readonly method: 'POST';
  readonly url: string;
  /** The caller's context (what the call's attempts are children of), when it has one. */
  readonly parentTraceparent: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** Attempts made so far; final at `asyncEnd`. */
  attempts: number;
  /** HTTP status of the last answer, when there was one. */
  status?: number;
}

/** `switchboard:call:attempt`: one HTTP request of a call (a retry is another attempt). */
export interface AttemptMessage extends Ended {
  readonly service: string;
  readonly operation: string;
  readonly method: 'POST';
  readonly url: string;
  /** 1-based; `attempt - 1` is OTel's `http.request.resend_count`. */
  readonly attempt: number;
  /** The `traceparent` sent with this request. */
  readonly traceparent: string | undefined;
  readonly parentTraceparent: string | undefined;
  /** The `switchboard:call` context of the call this attempt belongs to. */
  readonly call: CallMessage;
  status?: number;
}

/** `switchboard:job:submit`: a client submitting an operation as a job (POST, 202). */
export interface JobSubmitMessage extends Ended {
  readonly service: string;
  readonly operation: string;
  readonly url: string;
  readonly idempotencyKey: string | undefined;
  readonly parentTraceparent: string | undefined;
  /** The `traceparent` sent with the submit request (what the job and its polls continue), set as it is sent. */
  traceparent?: string;
  /** Set at the end, when the server accepted it. */
  jobId?: string;
  /** HTTP status of the answer (202, or a problem's). */
  status?: number;
}

/** `switchboard:job:poll`: a client reading a job's status monitor once (a long poll is one poll). */
export interface JobPollMessage extends Ended {
  readonly jobId: string;
  readonly url: string;
  /** 1-based count of polls of this job by this client handle. */
  readonly poll: number;
  readonly parentTraceparent: string | undefined;
  /** HTTP status of the monitor's answer. */
  status?: number;
  /** The job's state as read (`pending`, `running`, `succeeded`, `failed`, `canceled`). */
  jobStatus?: string;
  retryAfterMs?: number;
}

/** `switchboard:job:run`: the server running one attempt of a job's handler. */
export interface JobRunMessage extends Ended {
  readonly service: string;
  readonly operation: string;
  readonly jobId: string;
  /** The job's `traceparent` (the server's context of the submit request), kept with the job. */
  readonly traceparent: string | undefined;
  /** The Idempotency-Key as stored (scoped: `{operation}:{key}`, with the owner when auth is on). */
  readonly idempotencyKey: string | undefined;
  readonly attempt: number;
  /** State the job is left in. */
  jobStatus?: string;
}

/** `switchboard:job:state`: every job state change on the server. */
export interface JobStateMessage {
  readonly jobId: string;
  readonly operation: string;
  readonly status: string;
  readonly traceparent?: string | undefined;
}

/** `switchboard:job:complete`: a job reached a final state on the server. */
export interface JobCompleteMessage {
  readonly service: string;
  readonly operation: string;
  readonly jobId: string;
  readonly status: string;
  readonly traceparent: string | undefined;
  /** From submission to the final state. */
  readonly durationMs: number;
  readonly attempts: number;
}

/** Kinds of outgoing message: `relay` is one an outbox relay publishes (sent, invoked or emitted into the outbox earlier). */
export type SendKind = 'send' | 'invoke' | 'emit' | 'relay';

/** `switchboard:send`: one message or event handed to a broker, until the broker confirmed it. */
export interface SendMessage extends Ended {
  readonly system: string;
  /** The broker topic (OTel `messaging.destination.name`). */
  readonly destination: string;
  readonly kind: SendKind;
  /** CloudEvent id = MessageId. */
  readonly messageId: string;
  readonly source: string | undefined;
  readonly type: string | undefined;
  /** The CloudEvents `traceparent` extension: the creation context. */
  readonly traceparent: string | undefined;
  /** The sender's context (`PublishOptions.traceparent`), which the creation context is a child of. */
  readonly parentTraceparent: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** Messages in the broker batch this one went in (1 for a single publish). */
  readonly batchSize: number;
  readonly bodySize: number;
}

/** `switchboard:receive`: a delivery taken from a broker and decoded (a sync trace: start/end). */
export interface ReceiveMessage extends Ended {
  readonly system: string;
  readonly destination: string;
  readonly group: string;
  /** The delivery's transport id (`messageId` once decoded). */
  readonly deliveryId: string;
  readonly attempt: number;
  readonly bodySize: number;
  messageId?: string;
  source?: string;
  type?: string;
  traceparent?: string;
}

/** How a delivery ended. */
export type Settlement = 'ack' | 'retry' | 'dead-letter' | 'filtered' | 'dropped';

/** `switchboard:process`: a delivery running the pipeline (inbox, retries, claim check, validation, handler). */
export interface ProcessMessage extends Ended {
  readonly system: string;
  readonly destination: string;
  readonly group: string;
  readonly messageId: string;
  readonly source: string;
  readonly type: string;
  /** The creation context (CloudEvents `traceparent` extension). */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /**
   * The delivery's own context: a child of the hop's transport `traceparent` when it has a valid
   * one, else of the creation context (a new trace without either). The handler runs in it
   * (`HandlerContext.traceparent`): what it calls and sends descends from it.
   */
  readonly spanTraceparent: string;
  readonly attempt: number;
  /** `broker`, or `http` for an event received on the CloudEvents endpoint. */
  readonly via: 'broker' | 'http';
  /** The decision, set at the end. */
  settlement?: Settlement;
  /** Dead-letter reason or retry delay. */
  reason?: string;
  retryDelayMs?: number;
}

/** `switchboard:settle`: the decision sent back to the broker (ack, nack with a delay), until the broker took it. */
export interface SettleMessage extends Ended {
  readonly system: string;
  readonly destination: string;
  readonly group: string;
  readonly messageId: string;
  readonly type: string | undefined;
  readonly attempt: number;
  readonly settlement: Settlement;
  readonly reason: string | undefined;
}

/** `switchboard:claimcheck:put|get`: a large payload stored in / fetched from the blob store. */
export interface ClaimCheckMessage extends Ended {
  readonly store: string;
  /** The claim-check reference (blob key). */
  readonly ref: string;
  readonly messageId: string | undefined;
  readonly destination: string | undefined;
  /** Bytes put, or expected on get. */
  size?: number;
}

/** `switchboard:dlq`: a dead letter was stored. */
export interface DeadLetterMessage {
  readonly system: string;
  readonly destination: string;
  readonly group: string;
  readonly messageId: string;
  readonly type: string | undefined;
  readonly attempt: number;
  readonly reason: string;
  readonly problem: unknown;
}

/** `switchboard:changes:lag`: a change source's replication slot over (or back under) its bound. */
export interface ChangeLagMessage {
  readonly source: string;
  readonly slot: string;
  readonly lagBytes: number;
  readonly maxLagBytes: number;
  readonly confirmedLsn: string;
  readonly currentLsn: string;
  readonly exceeded: boolean;
}

/** `switchboard:changes:progress`: a change source's slot lag, each time it is measured (`source.lag()`, and its periodic lag check). */
export interface ChangeProgressMessage {
  readonly source: string;
  readonly slot: string;
  readonly lagBytes: number;
  readonly confirmedLsn: string;
  readonly currentLsn: string;
}

function traced<C extends object>(name: string): TracingChannel<unknown, C> {
  return diagnosticsChannel.tracingChannel<unknown, C>(name);
}

function point<M>(name: string): Channel<unknown, M> {
  return diagnosticsChannel.channel(name) as Channel<unknown, M>;
}

/** The tracing channels (`tracing:<name>:*`). */
export const tracing = {
  handler: traced<HandlerMessage>('switchboard:handler'),
  call: traced<CallMessage>('switchboard:call'),
  attempt: traced<AttemptMessage>('switchboard:call:attempt'),
  jobSubmit: traced<JobSubmitMessage>('switchboard:job:submit'),
  jobPoll: traced<JobPollMessage>('switchboard:job:poll'),
  jobRun: traced<JobRunMessage>('switchboard:job:run'),
  send: traced<SendMessage>('switchboard:send'),
  receive: traced<ReceiveMessage>('switchboard:receive'),
  process: traced<ProcessMessage>('switchboard:process'),
  settle: traced<SettleMessage>('switchboard:settle'),
  claimCheckPut: traced<ClaimCheckMessage>('switchboard:claimcheck:put'),
  claimCheckGet: traced<ClaimCheckMessage>('switchboard:claimcheck:get'),
} as const;

/** The plain channels. */
export const channels = {
  jobState: point<JobStateMessage>('switchboard:job:state'),
  jobComplete: point<JobCompleteMessage>('switchboard:job:complete'),
  deadLetter: point<DeadLetterMessage>('switchboard:dlq'),
  changeLag: point<ChangeLagMessage>('switchboard:changes:lag'),
  changeProgress: point<ChangeProgressMessage>('switchboard:changes:progress'),
} as const;

export type TracingChannelName = keyof typeof tracing;
export type ChannelName = keyof typeof channels;

/** Every channel name, as subscribers write them (tracing channels without their `tracing:` prefix and event suffix). */
export const channelNames = {
  tracing: [
    'switchboard:handler',
    'switchboard:call',
    'switchboard:call:attempt',
    'switchboard:job:submit',
    'switchboard:job:poll',
    'switchboard:job:run',
    'switchboard:send',
    'switchboard:receive',
    'switchboard:process',
    'switchboard:settle',
    'switchboard:claimcheck:put',
    'switchboard:claimcheck:get',
  ],
  point: [
    'switchboard:job:state',
    'switchboard:job:complete',
    'switchboard:dlq',
    'switchboard:changes:lag',
    'switchboard:changes:progress',
  ],
} as const;

/**
 * Runs `run` traced on `channel` with `context` when it has subscribers (`start`, `end`,
 * `asyncStart`, `asyncEnd`, `error`), or just runs it. `finish` fills the context from the value
 * before `asyncEnd`; `durationMs` and `outcome` are set here (`outcome` from a rejection, else
 * what `finish` said, else `ok`).
 *
 * The events and the context are those of `TracingChannel.tracePromise` (stores bound to `start`
 * are entered around `run`; `result` or `error` is set on the context), but published here with one
 * `.then` on `run`'s promise rather than `tracePromise`'s layers and closures around another.
 */
export function traceAsync<C extends Ended, T>(
  channel: TracingChannel<unknown, C>,
  context: C,
  run: () => Promise<T>,
  finish?: (context: C, value: T) => void,
): Promise<T> {
  const started = performance.now();
  return channel.start.runStores(context, () => {
    let promise: Promise<T>;
    try {
      promise = run();
    } catch (error) {
      context.durationMs = performance.now() - started;
      failed(context, error);
      channel.error.publish(context);
      channel.end.publish(context);
      throw error;
    }
    channel.end.publish(context);
    return promise.then(
      (value) => {
        context.durationMs = performance.now() - started;
        if (finish !== undefined) finish(context, value);
        context.outcome ??= 'ok';
        (context as { result?: unknown }).result = value;
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
        return value;
      },
      (error: unknown) => {
        context.durationMs = performance.now() - started;
        failed(context, error);
        channel.error.publish(context);
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
        throw error;
      },
    );
  });
}

/**
 * Traces many operations that one promise completes (each message of a broker batch, all confirmed
 * by the batch's publish): `start` and `end` for each context now, then `asyncStart` and `asyncEnd`
 * for each (`error` first when it rejected) from a single `.then`, instead of one `traceAsync` per
 * context and a `Promise.all` over them. Resolves or rejects as `promise` does.
 */
export function traceAll<C extends Ended>(
  channel: TracingChannel<unknown, C>,
  contexts: readonly C[],
  promise: Promise<void>,
): Promise<void> {
  const started = performance.now();
  for (const context of contexts) {
    channel.start.runStores(context, noop);
    channel.end.publish(context);
  }
  return promise.then(
    (value) => {
      const durationMs = performance.now() - started;
      for (const context of contexts) {
        context.durationMs = durationMs;
        context.outcome ??= 'ok';
        (context as { result?: unknown }).result = value;
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
      }
    },
    (error: unknown) => {
      const durationMs = performance.now() - started;
      for (const context of contexts) {
        context.durationMs = durationMs;
        failed(context, error);
        channel.error.publish(context);
        channel.asyncStart.publish(context);
        channel.asyncEnd.publish(context);
      }
      throw error;
    },
  );
}

function noop(): void {}

function failed(context: Ended, error: unknown): void {
  context.outcome = 'error';
  context.error = error;
  context.errorType ??= errorTypeOf(error);
}

/** A traced span published by hand (when start and end are callbacks, not one promise). */
export interface ManualTrace<C extends Ended> {
  readonly context: C;
  /** Publishes `error` (when `error` is given) then `asyncEnd`. Idempotent. */
  end(error?: unknown): void;
}

/** Publishes `start` now; `end` publishes `asyncStart` and `asyncEnd` (`error` first when failed). */
export function traceManual<C extends Ended>(channel: TracingChannel<unknown, C>, context: C): ManualTrace<C> {
  const started = performance.now();
  channel.start.publish(context);
  channel.end.publish(context);
  let ended = false;
  return {
    context,
    end(error?: unknown) {
      if (ended) return;
      ended = true;
      context.durationMs = performance.now() - started;
      if (error !== undefined) {
        context.outcome = 'error';
        context.error ??= error;
        context.errorType ??= errorTypeOf(error);
        channel.error.publish(context);
      } else {
        context.outcome ??= 'ok';
      }
      channel.asyncStart.publish(context);
      channel.asyncEnd.publish(context);
    },
  };
}

/** A low-cardinality name for what failed: a Switchboard or operation error code, else the error's name. */
export function errorTypeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0 && code.length <= 64) return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name.length > 0) return name;
  }
  return '_OTHER';
}

/** Some of a tracing channel's five events. */
export type TracingHandlers<C> = {
  readonly [E in 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error']?: (context: C) => void;
};

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/** Subscribes to the given events of a tracing channel; returns the unsubscribe function. */
export function subscribeTracing<C extends object>(channel: TracingChannel<unknown, C>, handlers: TracingHandlers<C>): () => void {
  const subscribed: [Channel, (message: unknown) => void][] = [];
  for (const event of EVENTS) {
    const handler = handlers[event];
    if (handler === undefined) continue;
    const listener = handler as (message: unknown) => void;
    channel[event].subscribe(listener);
    subscribed.push([channel[event], listener]);
  }
  return () => {
    for (const [events, listener] of subscribed.splice(0)) events.unsubscribe(listener);
  };
}

/** Subscribes to a plain channel with a typed listener; returns the unsubscribe function. */
export function subscribeChannel<M>(channel: Channel<unknown, M>, listener: (message: M) => void): () => void {
  const untyped = listener as (message: unknown) => void;
  channel.subscribe(untyped);
  return () => channel.unsubscribe(untyped);
}
