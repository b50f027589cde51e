import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type {
  Broker,
  CloudEvent,
  Delivery,
  DeliveryGuarantee,
  Headers,
  ProcessMessage,
  ReceiveMessage,
  SettleMessage,
  Settlement,
  SignatureProblem,
  Subscription,
  TraceCarrier,
  TraceContext,
} from '@switchboard/core';
import {
  backoffDelay,
  channels,
  encodeCloudEvent,
  errorTypeOf,
  isSwitchboardError,
  SIGNATURE_ATTRIBUTE,
  SwitchboardError,
  signatureError,
  traceAsync,
  tracing,
} from '@switchboard/core';
import { deliveryTrace } from './context.js';
import { bytesId, checkIdentity, decodeDelivery, undecodableId } from './decode.js';
import type { DeadLetterWriter } from './middleware/dead-letter.js';
import { classify } from './middleware/retry.js';
import { InboundMessage, type InboundVia, type Outcome, type Step } from './pipeline.js';

/** How an event received outside the broker (`POST /events`) came: its transport hop and who delivered it. */
export interface ReceiveOptions {
  /** The transport's trace headers (`traceparent` / `tracestate`), continued by the handler when valid. */
  readonly hop?: TraceCarrier;
  /** The authenticated principal that delivered it, kept with its receipt (`Receipt.sender`). */
  readonly sender?: string;
}

export interface ConsumerConfig {
  readonly broker: Broker;
  readonly group: string;
  /**
   * The delivery policy. `at-least-once`: the group is declared, every delivery is settled by its
   * outcome (ack, nack with a delay, ack after a dead letter was stored), and a pipeline that itself
   * fails (a store down) nacks with backoff — the message is never lost. `at-most-once`: nothing is
   * declared or settled (the engine keeps nothing to settle); whatever fails is dropped and told to
   * the `switchboard:process` channel as `dropped`.
   */
  readonly guarantee: DeliveryGuarantee;
  /** The topics to subscribe to, asked at `start`. */
  readonly topics: () => readonly string[];
  /** Everything after decoding: inbox, dead letters, retries, claim check, validation, the handler. */
  readonly pipeline: Step;
  /** Where bytes that are not a CloudEvent go (at-least-once); undefined: they are dropped. */
  readonly deadLetters: DeadLetterWriter | undefined;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  /**
   * Whether the handler the event would reach takes it (its CloudEvents SQL filter); a refused event
   * is acknowledged without running anything and counted, never dead-lettered.
   */
  readonly admit?: (topic: string, event: CloudEvent) => boolean;
  /** The filter each topic's subscription hands to the engine (`SubscribeOptions.filter`). */
  readonly filterOf?: (topic: string) => string | undefined;
  /**
   * Checks the event's signature before anything else reads it (before the filter and the inbox):
   * `undefined` to take it, else why it is refused (a dead letter with reason `signature`).
   */
  readonly verify?: (event: CloudEvent) => SignatureProblem | undefined;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One consumer group's subscriptions on one broker: the one track every message takes. Each
 * delivery is decoded once (its CloudEvent read through the broker's binding), then runs the
 * pipeline, then is settled as the delivery policy says.
 */
export class Consumer {
  readonly #config: ConsumerConfig;
  readonly #atLeastOnce: boolean;
  readonly #subscriptions: Subscription[] = [];
  readonly #closing = new AbortController();
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  #filtered = 0;

  constructor(config: ConsumerConfig) {
    this.#config = config;
    this.#atLeastOnce = config.guarantee === 'at-least-once';
    // Every running handler listens to it (through its own timeout signal).
    setMaxListeners(0, this.#closing.signal);
  }

  get started(): boolean {
    return this.#started !== undefined;
  }

  /** Events acknowledged without running because their handler's filter did not match them. */
  get filtered(): number {
    return this.#filtered;
  }

  /** Subscribes to every topic the registered handlers need (declaring the group first where messages are kept). */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const { broker, group, maxInFlight, ackTimeoutMs } = this.#config;
    const topics = this.#config.topics();
    if (this.#atLeastOnce) await Promise.all(topics.map((topic) => broker.declareGroup(topic, group)));
    for (const topic of topics) {
      const filter = this.#config.filterOf?.(topic);
      const options =
        filter === undefined ? { topic, group, maxInFlight, ackTimeoutMs } : { topic, group, maxInFlight, ackTimeoutMs, filter };
      this.#subscriptions.push(await broker.subscribe(options, this.#onDelivery));
    }
  }

  readonly #onDelivery = (delivery: Delivery): Promise<void> => {
    if (observed()) return this.#onObservedDelivery(delivery);
    let event: CloudEvent;
    try {
      event = decodeDelivery(delivery, this.#config.broker.binding);
    } catch (error) {
      return this.#undecodable(delivery, error);
    }
    const verify = this.#config.verify;
    // A signature that verified binds the event to its source: that source is its sender (the
    // receipt's, readable over HTTP by the principal of that name). Unsigned events have none.
    let sender: string | undefined;
    if (verify !== undefined) {
      const problem = verify(event);
      if (problem !== undefined) return this.#forged(delivery, event, problem);
      if (event.extensions?.[SIGNATURE_ATTRIBUTE] !== undefined) sender = event.source;
    }
    const admit = this.#config.admit;
    if (admit !== undefined && !admit(delivery.topic, event)) return this.#skip(delivery, event);
    const run = this.#run(delivery, event, 'broker', sender);
    if (!this.#atLeastOnce) return run.then(done, done);
    return run.then((outcome) => settle(delivery, outcome));
  };

  /** `#onDelivery` while someone listens: traced on `switchboard:receive`, `process` and `settle`. */
  #onObservedDelivery(delivery: Delivery): Promise<void> {
    const { broker, group } = this.#config;
    const receive: ReceiveMessage = {
      system: broker.name,
      destination: delivery.topic,
      group,
      deliveryId: delivery.id,
      attempt: delivery.attempt,
      bodySize: delivery.body.byteLength,
    };
    const decode = (): CloudEvent => {
      const started = performance.now();
      try {
        const decoded = decodeDelivery(delivery, broker.binding);
        receive.messageId = decoded.id;
        receive.source = decoded.source;
        receive.type = decoded.type;
        const traceparent = decoded.extensions?.traceparent;
        if (typeof traceparent === 'string') receive.traceparent = traceparent;
        receive.outcome = 'ok';
        return decoded;
      } catch (error) {
        receive.outcome = 'error';
        receive.error = error;
        receive.errorType = errorTypeOf(error);
        throw error;
      } finally {
        receive.durationMs = performance.now() - started;
      }
    };
    let event: CloudEvent;
    try {
      event = tracing.receive.hasSubscribers ? tracing.receive.traceSync(decode, receive) : decode();
    } catch (error) {
      return this.#undecodable(delivery, error);
    }
    const verify = this.#config.verify;
    let sender: string | undefined;
    if (verify !== undefined) {
      const problem = verify(event);
      if (problem !== undefined) return this.#forged(delivery, event, problem);
      if (event.extensions?.[SIGNATURE_ATTRIBUTE] !== undefined) sender = event.source;
    }
    const admit = this.#config.admit;
    if (admit !== undefined && !admit(delivery.topic, event)) return this.#skip(delivery, event);
    const run = this.#process(delivery, event, 'broker', sender);
    if (!this.#atLeastOnce) return run.then(done, done);
    return run.then((outcome) => {
      if (!tracing.settle.hasSubscribers) return settle(delivery, outcome);
      const context: SettleMessage = {
        system: broker.name,
        destination: delivery.topic,
        group,
        messageId: event.id,
        type: event.type,
        attempt: delivery.attempt,
        settlement: outcome.kind,
        reason: outcome.kind === 'dead-letter' ? outcome.reason : undefined,
      };
      return traceAsync(tracing.settle, context, () => settle(delivery, outcome));
    });
  }

  /** Filtered out: acknowledged, counted, traced on `switchboard:settle` as `filtered`. */
  #skip(delivery: Delivery, event: CloudEvent): Promise<void> {
    this.#filtered += 1;
    if (!this.#atLeastOnce) return RESOLVED;
    if (!tracing.settle.hasSubscribers) return delivery.ack();
    return traceAsync(tracing.settle, this.#settleContext(delivery, event.id, event.type, 'filtered', undefined), () => delivery.ack());
  }

  #settleContext(
    delivery: Delivery,
    messageId: string,
    type: string | undefined,
    settlement: Settlement,
    reason: string | undefined,
  ): SettleMessage {
    const { broker, group } = this.#config;
    return { system: broker.name, destination: delivery.topic, group, messageId, type, attempt: delivery.attempt, settlement, reason };
  }

  /** Bytes that are not a CloudEvent (or whose identity is over its limits): a dead letter with the raw bytes, never a retry. */
  async #undecodable(delivery: Delivery, error: unknown): Promise<void> {
    const { group, broker } = this.#config;
    const verdict = classify(error);
    const reason = verdict.permanent ? verdict.reason : 'not-cloudevent';
    if (!this.#atLeastOnce) return;
    const subject = { group, delivery, messageId: undecodableId(delivery), source: '', type: undefined, attempt: delivery.attempt };
    try {
      await this.#config.deadLetters?.write(subject, reason, verdict.problem);
    } catch {
      // The dead-letter store is down: the message comes back later and is tried again.
      return delivery.nack(backoffDelay(delivery.attempt));
    }
    if (channels.deadLetter.hasSubscribers) {
      channels.deadLetter.publish({
        system: broker.name,
        destination: delivery.topic,
        group,
        messageId: subject.messageId,
        type: undefined,
        attempt: delivery.attempt,
        reason,
        problem: verdict.problem,
      });
    }
    if (!tracing.settle.hasSubscribers) return delivery.ack();
    return traceAsync(tracing.settle, this.#settleContext(delivery, subject.messageId, undefined, 'dead-letter', reason), () =>
      delivery.ack(),
    );
  }

  /** `#run`, traced on `switchboard:process` when someone listens; a dead letter is told to `switchboard:dlq`. */
  #process(delivery: Delivery, event: CloudEvent, via: InboundVia, sender?: string): Promise<Outcome> {
    const { broker, group } = this.#config;
    if (!tracing.process.hasSubscribers) {
      return this.#run(delivery, event, via, sender).then((outcome) => this.#told(delivery, event, outcome));
    }
    const extensions = event.extensions;
    // Made now, so the process span can stand for the context the handler runs in.
    const trace = deliveryTrace(delivery, event, via);
    const context: ProcessMessage = {
      system: broker.name,
      destination: delivery.topic,
      group,
      messageId: event.id,
      source: event.source,
      type: event.type,
      traceparent: typeof extensions?.traceparent === 'string' ? extensions.traceparent : undefined,
      tracestate: typeof extensions?.tracestate === 'string' ? extensions.tracestate : undefined,
      spanTraceparent: trace.traceparent,
      attempt: delivery.attempt,
      via,
    };
    return traceAsync(
      tracing.process,
      context,
      () => this.#run(delivery, event, via, sender, trace),
      (message, outcome) => {
        this.#told(delivery, event, outcome);
        if (outcome.kind === 'ack') {
          message.settlement = outcome.skipped === 'filtered' ? 'filtered' : 'ack';
        } else {
          message.settlement = this.#atLeastOnce ? outcome.kind : 'dropped';
          if (outcome.kind === 'dead-letter') message.reason = outcome.reason;
          else message.retryDelayMs = outcome.delayMs;
          message.outcome = 'error';
          const problem = outcome.error;
          message.error = problem;
          message.errorType = typeof problem?.code === 'string' ? problem.code : outcome.kind === 'dead-letter' ? outcome.reason : 'retry';
        }
      },
    );
  }

  /** Tells `switchboard:dlq` about a dead letter. */
  #told(delivery: Delivery, event: CloudEvent, outcome: Outcome): Outcome {
    if (outcome.kind === 'dead-letter' && this.#atLeastOnce && channels.deadLetter.hasSubscribers) {
      const { broker, group } = this.#config;
      channels.deadLetter.publish({
        system: broker.name,
        destination: delivery.topic,
        group,
        messageId: event.id,
        type: event.type,
        attempt: delivery.attempt,
        reason: outcome.reason,
        problem: outcome.error,
      });
    }
    return outcome;
  }

  /**
   * A signature that is missing or does not verify: a dead letter with reason `signature`, never a
   * retry, never the inbox. Filed under a digest of the bytes (not the event's id, which the sender
   * chose), so a forgery cannot add to, or take the place of, the dead letter of a genuine message.
   */
  async #forged(delivery: Delivery, event: CloudEvent, problem: SignatureProblem): Promise<void> {
    const error = signatureError(problem);
    if (!this.#atLeastOnce) {
      // Nothing to settle: told to the settle channel as dropped.
      if (tracing.settle.hasSubscribers) {
        const context = this.#settleContext(delivery, event.id, event.type, 'dropped', 'signature');
        await traceAsync(tracing.settle, context, () => RESOLVED);
      }
      return;
    }
    const subject = {
      group: this.#config.group,
      delivery,
      messageId: bytesId(delivery),
      source: event.source,
      type: event.type,
      attempt: delivery.attempt,
    };
    try {
      await this.#config.deadLetters?.write(subject, 'signature', error.toProblem());
    } catch {
      return delivery.nack(backoffDelay(delivery.attempt));
    }
    if (channels.deadLetter.hasSubscribers) {
      channels.deadLetter.publish({
        system: this.#config.broker.name,
        destination: delivery.topic,
        group: this.#config.group,
        messageId: subject.messageId,
        type: event.type,
        attempt: delivery.attempt,
        reason: 'signature',
        problem: error.toProblem(),
      });
    }
    if (!tracing.settle.hasSubscribers) return delivery.ack();
    return traceAsync(tracing.settle, this.#settleContext(delivery, subject.messageId, event.type, 'dead-letter', 'signature'), () =>
      delivery.ack(),
    );
  }

  async #run(delivery: Delivery, event: CloudEvent, via: InboundVia, sender?: string, trace?: TraceContext): Promise<Outcome> {
    const message = new InboundMessage(delivery, event, this.#config.group, via, this.#closing.signal);
    if (sender !== undefined) message.sender = sender;
    if (trace !== undefined) message.trace = trace;
    try {
      return await this.#config.pipeline(message);
    } catch (error) {
      return this.#machineryFailed(message, error);
    }
  }

  /**
   * The pipeline's own machinery failed (a store refused or was unreachable). A permanent refusal
   * (`retryable: false`, e.g. a value the store cannot hold) is a dead letter with reason `store`:
   * retrying cannot help. Anything else is tried again later; the message is never lost.
   */
  async #machineryFailed(message: InboundMessage, error: unknown): Promise<Outcome> {
    const delivery = message.delivery;
    if (this.#atLeastOnce && isSwitchboardError(error) && !error.retryable && this.#config.deadLetters !== undefined) {
      const problem = error.toProblem();
      const { event } = message;
      const subject = {
        group: message.group,
        delivery,
        messageId: event.id,
        source: event.source,
        type: event.type,
        attempt: message.attempt,
      };
      try {
        await this.#config.deadLetters.write(subject, 'store', problem);
        return { kind: 'dead-letter', reason: 'store', error: problem };
      } catch {
        // Fall through: try again later.
      }
    }
    // Said over HTTP (503 + Retry-After): a store's own problem (unavailable, full), never an internal message.
    const problem = isSwitchboardError(error) ? error.toProblem() : new SwitchboardError('SB_STORE_UNAVAILABLE').toProblem();
    return { kind: 'retry', delayMs: backoffDelay(delivery.attempt), error: problem, counted: false };
  }

  /**
   * Runs an event received outside the broker (the CloudEvents HTTP endpoint) through the same
   * pipeline, without encoding or decoding it again. Should it be dead-lettered, its headers and
   * body are encoded in the broker's binding then, so the dead letter can be replayed through the broker.
   */
  receive(event: CloudEvent, topic: string, options: ReceiveOptions = {}): Promise<Outcome> {
    try {
      checkIdentity(event);
      this.verifyOrThrow(event);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#config.admit !== undefined && !this.#config.admit(topic, event)) {
      this.#filtered += 1;
      return Promise.resolve({ kind: 'ack', skipped: 'filtered' });
    }
    const delivery = new HttpDelivery(event, topic, this.#config.broker, options.hop);
    return observed() ? this.#process(delivery, event, 'http', options.sender) : this.#run(delivery, event, 'http', options.sender);
  }

  /** `SB_SIGNATURE_INVALID` (403) when the event's signature is missing or does not verify. */
  verifyOrThrow(event: CloudEvent): void {
    const problem = this.#config.verify?.(event);
    if (problem !== undefined) throw signatureError(problem);
  }

  /** Stops taking deliveries; in-flight ones finish (or are released by the broker after its drain timeout). */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.close()));
    this.#closing.abort();
  }
}

function done(): Promise<void> {
  return RESOLVED;
}

/** The delivery policy's settlement of an outcome (at-least-once). */
function settle(delivery: Delivery, outcome: Outcome): Promise<void> {
  switch (outcome.kind) {
    case 'ack':
    case 'dead-letter':
      return delivery.ack();
    case 'retry':
      return delivery.nack(outcome.delayMs);
  }
}

/** Whether any consumer-side channel has a subscriber (one check on the fast path). */
function observed(): boolean {
  return (
    tracing.receive.hasSubscribers || tracing.process.hasSubscribers || tracing.settle.hasSubscribers || channels.deadLetter.hasSubscribers
  );
}

/** A delivery made of an event received over HTTP: nothing to settle, its bytes encoded only if something asks for them. */
class HttpDelivery implements Delivery {
  readonly id: string;
  readonly topic: string;
  readonly attempt = 1;
  readonly #event: CloudEvent;
  readonly #broker: Broker;
  #encoded: { readonly headers: Headers; readonly body: Uint8Array } | undefined;

  /** The trace headers of the HTTP request that carried the event (the hop). */
  readonly hop: TraceCarrier | undefined;

  constructor(event: CloudEvent, topic: string, broker: Broker, hop: TraceCarrier | undefined) {
    this.hop = hop;
    this.id = event.id;
    this.topic = topic;
    this.#event = event;
    this.#broker = broker;
  }

  get headers(): Headers {
    return this.#encode().headers;
  }

  get body(): Uint8Array {
    return this.#encode().body;
  }

  /**
   * The event in the broker's binding; in structured mode when binary mode cannot write it (text in
   * a charset it cannot encode): every event that decoded can be written as a structured document,
   * which every binding reads, so the dead letter can be replayed.
   */
  #encode(): { readonly headers: Headers; readonly body: Uint8Array } {
    if (this.#encoded !== undefined) return this.#encoded;
    const binding = this.#broker.binding;
    try {
      this.#encoded = encodeCloudEvent(this.#event, binding);
    } catch (error) {
      if (binding.mode === 'structured') throw error;
      this.#encoded = encodeCloudEvent(this.#event, binding, 'structured');
    }
    return this.#encoded;
  }

  ack(): Promise<void> {
    return RESOLVED;
  }

  nack(): Promise<void> {
    return RESOLVED;
  }
}
