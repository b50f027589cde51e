import type { Channel } from 'node:diagnostics_channel';
import {
  type Attributes,
  type Context,
  context as contextApi,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type {
  AttemptMessage,
  ClaimCheckMessage,
  DeadLetterMessage,
  Ended,
  HandlerMessage,
  JobCompleteMessage,
  JobPollMessage,
  JobRunMessage,
  JobStateMessage,
  JobSubmitMessage,
  ProcessMessage,
  SendMessage,
  SettleMessage,
} from '@switchboard/core';
import { channels, parseTraceparent, subscribeChannel, subscribeTracing, tracing } from '@switchboard/core';
import { newSpanId, newTraceId } from '@switchboard/core/kit';

export interface InstrumentOptions {
  /** Where spans go. Default: the global tracer provider (`trace.getTracerProvider()`). */
  readonly tracerProvider?: TracerProvider;
  /**
   * Parent each message's `process` span on its creation context (the CloudEvents `traceparent`)
   * instead of only linking to it; the ambient context becomes a link then. Default false: the
   * messaging conventions' default (a link), since a consumer often runs inside another span.
   */
  readonly parentProcessOnCreation?: boolean;
  /** Span contexts remembered by Switchboard `traceparent` (to parent and link across channels in one process). Default 10 000. */
  readonly maxRemembered?: number;
  /**
   * A CLIENT span for each settlement (`ack {destination}`, `nack {destination}`, a child of the
   * process span), timing the broker's acknowledgement. Default false: the process span carries the
   * settlement (`switchboard.settlement`), and Switchboard settles for the handler, as the messaging
   * conventions allow leaving settle spans out of.
   */
  readonly settleSpans?: boolean;
}

export interface Instrumentation {
  /** Unsubscribes from every channel (spans still open are not ended: their end is no longer observed). */
  close(): void;
}

const NAME = '@switchboard/otel';
/** Where the bridge keeps a context's span: on the context object itself (cheaper than a WeakMap). */
const SPAN = Symbol('switchboard.otel.span');
type Carrier = { [SPAN]?: Span | undefined };
const VERSION = '0.1.0';

/** A live `process` span of one group, and the next live one of the same message (another group's). */
interface LiveProcess {
  readonly span: Span;
  readonly group: string;
  next: LiveProcess | undefined;
}

/**
 * `messaging.system` for each Switchboard engine (`Broker.name`). The registry has no value for
 * NATS, Redis, PostgreSQL, SQLite or MQTT: custom values, as the conventions allow.
 */
export function messagingSystem(engine: string, operation: 'send' | 'receive'): string {
  switch (engine) {
    case 'nats':
    case 'nats-core':
      return 'nats';
    case 'redis-streams':
    case 'redis-pubsub':
      return 'redis';
    case 'postgres':
      return 'postgresql';
    case 'sns-sqs':
      return operation === 'send' ? 'aws.sns' : 'aws_sqs';
    default:
      return engine;
  }
}

/**
 * Subscribes to Switchboard's diagnostics channels and turns them into OpenTelemetry spans:
 * HTTP server and client spans (stable HTTP conventions), `send`/`process`/`settle` spans
 * (messaging conventions, Development), one span per job run linked to its submit and to the polls
 * that watched it, claim-check spans. Depends only on `@opentelemetry/api`; bring your own SDK.
 */
export function instrument(options: InstrumentOptions = {}): Instrumentation {
  const provider = options.tracerProvider ?? trace.getTracerProvider();
  const bridge = new Bridge(provider.getTracer(NAME, VERSION), options);
  return { close: () => bridge.close() };
}

/**
 * A bounded map in two generations: entries go into the young one; when it is full it becomes the
 * old one and the previous old one is dropped. O(1) per operation (deleting the oldest entry of
 * one big Map one at a time makes V8 walk its tombstones).
 */
class Remembered<V> {
  readonly #max: number;
  #young = new Map<string, V>();
  #old = new Map<string, V>();
  constructor(max: number) {
    this.#max = Math.max(1, Math.ceil(max / 2));
  }
  get(key: string | undefined): V | undefined {
    if (key === undefined) return undefined;
    return this.#young.get(key) ?? this.#old.get(key);
  }
  set(key: string | undefined, value: V): void {
    if (key === undefined) return;
    if (this.#young.size >= this.#max) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    this.#young.set(key, value);
  }
}

/** An OpenTelemetry SDK `IdGenerator` (`idGenerator` of a tracer provider's options). */
export interface IdGenerator {
  generateTraceId(): string;
  generateSpanId(): string;
}

/** The ids the span being started is to have: those Switchboard already put on the wire for it. */
let nextIds: { readonly traceId: string; readonly spanId: string } | undefined;
let idsWanted = false;

/**
 * An `IdGenerator` for your tracer provider (`new NodeTracerProvider({ idGenerator:
 * switchboardIds() })`) that gives each span the bridge starts the ids Switchboard sent on the wire
 * for it: an attempt's `traceparent` header, a handler's own context, a message's creation context
 * (its CloudEvents `traceparent`), a delivery's own context. Then a span in another process names an
 * exported span as its parent or link, and trace UIs show no missing parents. Spans started by
 * anything else get random ids, as with the SDK's own generator.
 */
export function switchboardIds(): IdGenerator {
  idsWanted = true;
  return {
    generateTraceId: () => nextIds?.traceId ?? newTraceId(),
    generateSpanId: () => nextIds?.spanId ?? newSpanId(),
  };
}

/** Starts a span with the ids of `traceparent` when `switchboardIds` is in use. */
function startAs(tracer: Tracer, traceparent: string | undefined, name: string, options: SpanOptions, parent: Context): Span {
  if (!idsWanted || traceparent === undefined) return tracer.startSpan(name, options, parent);
  const parsed = parseTraceparent(traceparent);
  if (parsed === undefined) return tracer.startSpan(name, options, parent);
  nextIds = { traceId: parsed.traceId, spanId: parsed.parentId };
  try {
    return tracer.startSpan(name, options, parent);
  } finally {
    nextIds = undefined;
  }
}

/** A W3C `traceparent` as a remote span context. */
export function spanContextOf(traceparent: string | undefined): SpanContext | undefined {
  const parsed = parseTraceparent(traceparent);
  if (parsed === undefined) return undefined;
  return { traceId: parsed.traceId, spanId: parsed.parentId, traceFlags: Number.parseInt(parsed.flags, 16) & 1, isRemote: true };
}

type HttpTarget = { readonly path: string; readonly host: string; readonly port: number; readonly scheme: string };
/** Parsed URLs: a client calls the same few URLs again and again, and `new URL` costs microseconds. */
const targets = new Map<string, HttpTarget>();

function httpTarget(url: string): HttpTarget {
  let target = targets.get(url);
  if (target === undefined) {
    if (targets.size >= 1000) targets.clear();
    target = parseTarget(url);
    targets.set(url, target);
  }
  return target;
}

function parseTarget(url: string): HttpTarget {
  try {
    const parsed = new URL(url);
    const scheme = parsed.protocol.replace(/:$/, '');
    return { path: parsed.pathname, host: parsed.hostname, port: Number(parsed.port || (scheme === 'https' ? 443 : 80)), scheme };
  } catch {
    return { path: url, host: '', port: 0, scheme: 'http' };
  }
}

class Bridge {
  readonly #tracer: Tracer;
  readonly #parentOnCreation: boolean;
  /** Span contexts by the Switchboard `traceparent` they stand for (the handler's, an attempt's, a message's creation). */
  readonly #contexts: Remembered<SpanContext>;
  /** Live job runs by job id (polls link to them, job handlers nest in them). */
  readonly #jobs = new Map<string, Span>();
  /** Live `process` spans by message id (handlers, claim-check fetches and dead letters nest in them); one per group, oldest first. */
  readonly #processes = new Map<string, LiveProcess>();
  /** Ended `process` span contexts by message id + group (settle spans are their children), kept with `settleSpans` only. */
  readonly #processed: Remembered<SpanContext> | undefined;
  readonly #unsubscribe: (() => void)[] = [];

  constructor(tracer: Tracer, options: InstrumentOptions) {
    this.#tracer = tracer;
    this.#parentOnCreation = options.parentProcessOnCreation ?? false;
    this.#contexts = new Remembered(options.maxRemembered ?? 10_000);
    this.#processed = options.settleSpans === true ? new Remembered(options.maxRemembered ?? 10_000) : undefined;
    this.#on(
      tracing.handler,
      (m) => this.#handler(m),
      (m, span) => {
        if (m.via !== 'http') return false;
        if (m.status !== undefined) span.setAttribute('http.response.status_code', m.status);
        // A server span's status is an error for 5xx only (HTTP conventions); 4xx is the caller's mistake.
        if (m.outcome === 'error' && (m.status ?? 500) >= 500) {
          span.setAttribute('error.type', String(m.status ?? 500));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        return true;
      },
    );
    this.#on(
      tracing.attempt,
      (m) => this.#attempt(m),
      (m, span) => {
        if (m.status !== undefined) span.setAttribute('http.response.status_code', m.status);
      },
    );
    this.#on(
      tracing.jobSubmit,
      (m) => this.#jobSubmit(m),
      (m, span) => this.#jobSubmitted(m, span),
    );
    this.#on(
      tracing.jobPoll,
      (m) => this.#jobPoll(m),
      (m, span) => {
        if (m.status !== undefined) span.setAttribute('http.response.status_code', m.status);
        if (m.jobStatus !== undefined) span.setAttribute('switchboard.job.status', m.jobStatus);
      },
    );
    this.#on(
      tracing.jobRun,
      (m) => this.#jobRun(m),
      (m, span) => {
        this.#jobs.delete(m.jobId);
        if (m.jobStatus !== undefined) span.setAttribute('switchboard.job.status', m.jobStatus);
      },
    );
    this.#on(tracing.send, (m) => this.#send(m));
    this.#on(
      tracing.process,
      (m) => this.#process(m),
      (m, span) => {
        this.#ended(m.messageId, span);
        this.#processed?.set(`${m.messageId}\u0000${m.group}`, span.spanContext());
        if (m.settlement !== undefined) span.setAttribute('switchboard.settlement', m.settlement);
      },
    );
    if (options.settleSpans === true) this.#on(tracing.settle, (m) => this.#settle(m));
    this.#on(tracing.claimCheckPut, (m) => this.#claimCheck('put', m));
    this.#on(tracing.claimCheckGet, (m) => this.#claimCheck('get', m));
    this.#point(channels.deadLetter, (m: DeadLetterMessage) => {
      this.#liveProcess(m.messageId, m.group)?.addEvent('switchboard.dead_letter', {
        'switchboard.dead_letter.reason': m.reason,
        'messaging.message.id': m.messageId,
      });
    });
    this.#point(channels.jobState, (m: JobStateMessage) => {
      this.#jobs.get(m.jobId)?.addEvent('switchboard.job.state', { 'switchboard.job.status': m.status });
    });
    this.#point(channels.jobComplete, (m: JobCompleteMessage) => {
      this.#jobs.get(m.jobId)?.setAttribute('switchboard.job.attempts', m.attempts);
    });
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  #on<C extends Ended & object>(
    channel: Parameters<typeof subscribeTracing<C>>[0],
    start: (message: C) => Span | undefined,
    end?: (message: C, span: Span) => unknown,
  ): void {
    this.#unsubscribe.push(
      subscribeTracing<C>(channel, {
        start: (message) => {
          const span = start(message);
          if (span !== undefined) (message as Carrier)[SPAN] = span;
        },
        asyncEnd: (message) => {
          const span = (message as Carrier)[SPAN];
          if (span === undefined) return;
          (message as Carrier)[SPAN] = undefined;
          const statusSet = end?.(message, span) === true;
          this.#finish(span, message, statusSet);
        },
      }),
    );
  }

  #point<M>(channel: Channel<unknown, M>, listener: (message: M) => void): void {
    this.#unsubscribe.push(subscribeChannel(channel, listener));
  }

  /** Sets the error status and `error.type` (unless the span kind's rules say otherwise, set before) and ends. */
  #finish(span: Span, message: Ended, statusSet = false): void {
    if (message.outcome === 'error' && !statusSet) {
      if (message.errorType !== undefined) span.setAttribute('error.type', message.errorType);
      const error = message.error;
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, ...(error instanceof Error ? { message: error.message } : {}) });
    }
    span.end();
  }

  /** A parent: the span a Switchboard `traceparent` stands for when this process made it, else that remote context. */
  #parentOf(traceparent: string | undefined): Context | undefined {
    const known = this.#contexts.get(traceparent) ?? spanContextOf(traceparent);
    return known === undefined ? undefined : trace.setSpanContext(ROOT_CONTEXT, known);
  }

  #linkTo(traceparent: string | undefined, attributes?: Attributes): Link | undefined {
    const known = this.#contexts.get(traceparent) ?? spanContextOf(traceparent);
    return known === undefined ? undefined : { context: known, ...(attributes === undefined ? {} : { attributes }) };
  }

  /** The context a span starts in: the OTel active span when there is one, else the given Switchboard parent. */
  #ambient(traceparent: string | undefined): Context {
    const active = contextApi.active();
    if (trace.getSpan(active) !== undefined) return active;
    return this.#parentOf(traceparent) ?? active;
  }

  #handler(m: HandlerMessage): Span | undefined {
    let span: Span;
    if (m.via === 'http') {
      const route = m.route ?? `/ops/${m.operation}`;
      span = startAs(
        this.#tracer,
        m.traceparent,
        `POST ${route}`,
        { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', 'url.path': route, 'url.scheme': 'http' } },
        this.#parentOf(m.parentTraceparent) ?? contextApi.active(),
      );
      if (span.isRecording()) {
        span.setAttributes({
          'http.route': route,
          'switchboard.service': m.service,
          'switchboard.operation': m.operation,
          'switchboard.via': m.via,
        });
        if (m.idempotencyKey !== undefined) span.setAttribute('switchboard.idempotency_key', m.idempotencyKey);
      }
    } else {
      const process = m.via === 'message' && m.messageId !== undefined ? this.#processOf(m.messageId) : undefined;
      if (process !== undefined) {
        // The process span is the handler's (messaging conventions): no span of its own. What the
        // handler calls and sends descends from its traceparent, which stands for the process span.
        if (process.isRecording()) process.setAttribute('switchboard.operation', m.operation);
        this.#contexts.set(m.traceparent, process.spanContext());
        return undefined;
      }
      const parent = m.via === 'job' && m.jobId !== undefined ? this.#jobs.get(m.jobId) : undefined;
      span = this.#tracer.startSpan(
        m.operation,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'switchboard.service': m.service,
            'switchboard.operation': m.operation,
            'switchboard.via': m.via,
            ...(m.idempotencyKey === undefined ? {} : { 'switchboard.idempotency_key': m.idempotencyKey }),
            ...(m.jobId === undefined ? {} : { 'switchboard.job.id': m.jobId }),
            ...(m.messageId === undefined ? {} : { 'messaging.message.id': m.messageId }),
          },
        },
        parent === undefined ? this.#ambient(m.parentTraceparent) : trace.setSpan(ROOT_CONTEXT, parent),
      );
    }
    // Calls and sends the handler makes descend from its traceparent: they nest under this span.
    this.#contexts.set(m.traceparent, span.spanContext());
    return span;
  }

  /** The oldest live `process` span of a message (what knows no group: handlers, claim-check gets). */
  #processOf(messageId: string): Span | undefined {
    return this.#processes.get(messageId)?.span;
  }

  #liveProcess(messageId: string, group: string): Span | undefined {
    for (let live = this.#processes.get(messageId); live !== undefined; live = live.next) if (live.group === group) return live.span;
    return undefined;
  }

  #started(messageId: string, group: string, span: Span): void {
    const first = this.#processes.get(messageId);
    if (first === undefined) {
      this.#processes.set(messageId, { span, group, next: undefined });
      return;
    }
    let last = first;
    while (last.next !== undefined) last = last.next;
    last.next = { span, group, next: undefined };
  }

  #ended(messageId: string, span: Span): void {
    const first = this.#processes.get(messageId);
    if (first === undefined) return;
    if (first.span === span) {
      if (first.next === undefined) this.#processes.delete(messageId);
      else this.#processes.set(messageId, first.next);
      return;
    }
    for (let live = first; live.next !== undefined; live = live.next) {
      if (live.next.span === span) {
        live.next = live.next.next;
        return;
      }
    }
  }

  #attempt(m: AttemptMessage): Span {
    const target = httpTarget(m.url);
    const span = startAs(
      this.#tracer,
      m.traceparent,
      `POST ${target.path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'http.request.method': 'POST', 'url.full': m.url, 'server.address': target.host, 'server.port': target.port },
      },
      this.#ambient(m.parentTraceparent),
    );
    if (span.isRecording()) {
      span.setAttributes({ 'url.template': target.path, 'switchboard.service': m.service, 'switchboard.operation': m.operation });
      if (m.attempt > 1) span.setAttribute('http.request.resend_count', m.attempt - 1);
    }
    // The server's span is a child of what this attempt sent.
    this.#contexts.set(m.traceparent, span.spanContext());
    return span;
  }

  #jobSubmit(m: JobSubmitMessage): Span {
    const target = httpTarget(m.url);
    return this.#tracer.startSpan(
      `POST ${target.path}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'POST',
          'url.full': m.url,
          'url.template': target.path,
          'server.address': target.host,
          'server.port': target.port,
          'switchboard.service': m.service,
          'switchboard.operation': m.operation,
          'switchboard.job.submit': true,
          ...(m.idempotencyKey === undefined ? {} : { 'switchboard.idempotency_key': m.idempotencyKey }),
        },
      },
      this.#ambient(m.parentTraceparent),
    );
  }

  #jobSubmitted(m: JobSubmitMessage, span: Span): void {
    if (m.status !== undefined) span.setAttribute('http.response.status_code', m.status);
    if (m.jobId !== undefined) span.setAttribute('switchboard.job.id', m.jobId);
    // The job (server side) and its polls (client side) continue the submit's traceparent: link them to this span.
    this.#contexts.set(m.traceparent, span.spanContext());
    // A job running in this process links to the submit span itself (the job's own traceparent is the server's child of the submit's).
    const job = m.jobId === undefined ? undefined : this.#jobs.get(m.jobId);
    job?.addLink({ context: span.spanContext(), attributes: { 'switchboard.link': 'submit' } });
  }

  #jobPoll(m: JobPollMessage): Span {
    const target = httpTarget(m.url);
    const link = this.#linkTo(m.parentTraceparent, { 'switchboard.link': 'submit' });
    const span = this.#tracer.startSpan(
      'GET /jobs/{id}',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'GET',
          'url.full': m.url,
          'url.template': '/jobs/{id}',
          'server.address': target.host,
          'server.port': target.port,
          'switchboard.job.id': m.jobId,
          'switchboard.job.poll': m.poll,
        },
        ...(link === undefined ? {} : { links: [link] }),
      },
      contextApi.active(),
    );
    this.#jobs
      .get(m.jobId)
      ?.addLink({ context: span.spanContext(), attributes: { 'switchboard.link': 'poll', 'switchboard.job.poll': m.poll } });
    return span;
  }

  #jobRun(m: JobRunMessage): Span {
    // The job's traceparent is the server's context of the submit request (same trace): link to it.
    const link = this.#linkTo(m.traceparent, { 'switchboard.link': 'submit' });
    const span = this.#tracer.startSpan(
      `job ${m.operation}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'switchboard.service': m.service,
          'switchboard.operation': m.operation,
          'switchboard.job.id': m.jobId,
          'switchboard.job.attempt': m.attempt,
          ...(m.idempotencyKey === undefined ? {} : { 'switchboard.idempotency_key': m.idempotencyKey }),
        },
        ...(link === undefined ? {} : { links: [link] }),
      },
      contextApi.active(),
    );
    this.#jobs.set(m.jobId, span);
    return span;
  }

  #send(m: SendMessage): Span {
    const system = messagingSystem(m.system, 'send');
    const span = startAs(
      this.#tracer,
      m.traceparent,
      `send ${m.destination}`,
      {
        // The send creates the message's context (its CloudEvents traceparent): PRODUCER.
        kind: SpanKind.PRODUCER,
        // What a sampler may decide on (the messaging conventions' sampling-relevant attributes); the rest only when recorded.
        attributes: {
          'messaging.system': system,
          'messaging.operation.name': 'send',
          'messaging.operation.type': 'send',
          'messaging.destination.name': m.destination,
        },
      },
      this.#ambient(m.parentTraceparent),
    );
    if (span.isRecording()) {
      span.setAttributes({
        'messaging.message.id': m.messageId,
        'messaging.message.body.size': m.bodySize,
        'cloudevents.event_id': m.messageId,
        'cloudevents.event_spec_version': '1.0',
        'switchboard.send.kind': m.kind,
      });
      if (m.batchSize > 1) span.setAttribute('messaging.batch.message_count', m.batchSize);
      if (m.source !== undefined) span.setAttribute('cloudevents.event_source', m.source);
      if (m.type !== undefined) span.setAttribute('cloudevents.event_type', m.type);
    }
    // Consumers link to the creation context: the CloudEvents traceparent stands for this span.
    this.#contexts.set(m.traceparent, span.spanContext());
    return span;
  }

  #process(m: ProcessMessage): Span {
    const system = messagingSystem(m.system, 'receive');
    const creation = this.#contexts.get(m.traceparent) ?? spanContextOf(m.traceparent);
    const ambient = contextApi.active();
    const ambientSpan = trace.getSpan(ambient)?.spanContext();
    const links: Link[] = [];
    let parent: Context = ambient;
    if (this.#parentOnCreation && creation !== undefined) {
      parent = trace.setSpanContext(ROOT_CONTEXT, creation);
      if (ambientSpan !== undefined) links.push({ context: ambientSpan });
    } else if (creation !== undefined) {
      links.push({ context: creation, attributes: { 'messaging.message.id': m.messageId } });
    }
    const span = startAs(
      this.#tracer,
      m.spanTraceparent,
      `process ${m.destination}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': system,
          'messaging.operation.name': 'process',
          'messaging.operation.type': 'process',
          'messaging.destination.name': m.destination,
          'messaging.consumer.group.name': m.group,
          'messaging.destination.subscription.name': m.group,
        },
        links,
      },
      parent,
    );
    if (span.isRecording()) {
      span.setAttributes({
        'messaging.message.id': m.messageId,
        'cloudevents.event_id': m.messageId,
        'cloudevents.event_source': m.source,
        'cloudevents.event_type': m.type,
        'cloudevents.event_spec_version': '1.0',
        'switchboard.delivery.attempt': m.attempt,
        'switchboard.via': m.via,
      });
    }
    this.#started(m.messageId, m.group, span);
    return span;
  }

  #settle(m: SettleMessage): Span {
    const system = messagingSystem(m.system, 'receive');
    const name = m.settlement === 'retry' ? 'nack' : 'ack';
    const processed = this.#processed?.get(`${m.messageId}\u0000${m.group}`);
    return this.#tracer.startSpan(
      `${name} ${m.destination}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'messaging.system': system,
          'messaging.operation.name': name,
          'messaging.operation.type': 'settle',
          'messaging.destination.name': m.destination,
          'messaging.consumer.group.name': m.group,
          'messaging.message.id': m.messageId,
          'switchboard.settlement': m.settlement,
          ...(m.reason === undefined ? {} : { 'switchboard.dead_letter.reason': m.reason }),
        },
      },
      processed === undefined ? contextApi.active() : trace.setSpanContext(ROOT_CONTEXT, processed),
    );
  }

  #claimCheck(operation: 'put' | 'get', m: ClaimCheckMessage): Span {
    const process = operation === 'get' && m.messageId !== undefined ? this.#processOf(m.messageId) : undefined;
    return this.#tracer.startSpan(
      `claimcheck.${operation}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'switchboard.claimcheck.store': m.store,
          ...(m.ref === '' ? {} : { 'switchboard.claimcheck.ref': m.ref }),
          ...(m.size === undefined ? {} : { 'switchboard.claimcheck.size': m.size }),
          ...(m.messageId === undefined ? {} : { 'messaging.message.id': m.messageId }),
          ...(m.destination === undefined ? {} : { 'messaging.destination.name': m.destination }),
        },
      },
      process === undefined ? contextApi.active() : trace.setSpan(ROOT_CONTEXT, process),
    );
  }
}
