import { compileFilter } from '@switchboard/cesql';
import type {
  AnyContract,
  BlobStore,
  Broker,
  CallInput,
  CloudEvent,
  DeadLetter,
  DeadLetterListOptions,
  DeadLetterStore,
  DeadLetterSummary,
  EventName,
  Handlers,
  ListPage,
  MessageInput,
  MessageName,
  OperationName,
  OutboxMessage,
  OutgoingMessage,
  ReceiptStore,
  SigningOptions,
} from '@switchboard/core';
import { createMessageSigning, SwitchboardError, withMode } from '@switchboard/core';
import { newSecretId } from '@switchboard/core/kit';
import type { HttpRoute } from '@switchboard/http';
import { eventsTopic } from './addressing.js';
import { type AtMostOnceOptions, checkAtMostOnceBroker, checkMainBroker, hasAtMostOnceEvents, onlyAtMostOnce } from './at-most-once.js';
import { Consumer } from './consumer.js';
import { handlerStep } from './handler-step.js';
import { cloudEventsRoute } from './http-events.js';
import { receiptsRoute } from './http-receipts.js';
import { claimCheck } from './middleware/claim-check.js';
import { DeadLetterWriter, deadLetter } from './middleware/dead-letter.js';
import { inbox } from './middleware/inbox.js';
import { retry } from './middleware/retry.js';
import { route } from './middleware/route.js';
import { timeout } from './middleware/timeout.js';
import { validateData } from './middleware/validate.js';
import { compose, type Middleware, type Outcome } from './pipeline.js';
import { type BatchEvent, type BatchMessage, type Lane, Publisher } from './publisher.js';
import { createReceipts, type Receipts } from './receipts.js';
import { type ReplayOptions, type ReplayResult, type ReplaySelector, replayDeadLetters } from './replay.js';
import { RouteTable } from './routes.js';
import type {
  ClaimCheckOptions,
  EmitArgs,
  EventHandler,
  EventPattern,
  MessageHandler,
  PublishOptions,
  RetryOptions,
  Sent,
} from './types.js';

export interface MessagingOptions {
  readonly broker: Broker;
  /** This service's name: the CloudEvents `source` of what it publishes and, by default, its consumer group. */
  readonly service: string;
  /** Consumer group. Default: `service`. Instances of one service share it (balanced); other services get their own copy. */
  readonly group?: string;
  /** Receipts and the inbox. Without it: no receipts, no deduplication (the transport path). */
  readonly receipts?: ReceiptStore;
  /** Deduplicate by MessageId with `ReceiptStore.claim` before running a handler. Default true when `receipts` is set. */
  readonly inbox?: boolean;
  /**
   * How long an inbox claim holds. A redelivery of a message whose worker died is deferred until
   * it runs out. Default `handlerTimeoutMs` + 5 000 ms.
   */
  readonly inboxLeaseMs?: number;
  /** Where dead letters go. `false`: a dead-lettered message is acknowledged and dropped (its receipt says `dead-lettered`). */
  readonly deadLetters: DeadLetterStore | false;
  /**
   * Claim-check blob stores. The first one stores this service's attachments and large payloads;
   * a consumer reads `dataref`s of any of them and refuses every other URI.
   */
  readonly blobs?: BlobStore | readonly BlobStore[];
  readonly claimCheck?: ClaimCheckOptions;
  readonly retry?: RetryOptions;
  /** A handler's time limit (an operation's `timeoutMs` wins). Default 30 000 ms. */
  readonly handlerTimeoutMs?: number;
  /** Unsettled deliveries per subscription. Default 64. */
  readonly maxInFlight?: number;
  /** Broker redelivery timeout. Default `handlerTimeoutMs` + 10 000 ms. */
  readonly ackTimeoutMs?: number;
  /** Extra middlewares, run around the handler (inside retries, timeout and validation). */
  readonly middleware?: readonly Middleware[];
  /** Longest `result` summary kept in a receipt, in characters. Default 4096. */
  readonly resultLimit?: number;
  /**
   * Declare the receiver's default group (its contract name) before the first send to it, so
   * nothing sent before it first subscribes is lost. Default true.
   */
  readonly declareReceiverGroups?: boolean;
  /**
   * A second, at-most-once broker (core NATS, Redis pub/sub, MQTT) for events declared
   * `delivery: 'at-most-once'`: they are emitted and received through it, bypassing the inbox,
   * receipts, retries and dead letters. Without it such events travel the reliable path like the others.
   */
  readonly atMostOnce?: AtMostOnceOptions;
  /**
   * Signed messages: every event this service publishes is signed with `sign` (the `sbsignature`
   * extension attribute), and every event it receives (broker or `POST /events`) is verified before
   * the inbox with the keys `verify.sources` binds to its `source`. An unsigned (unless `require:
   * false`) or wrongly signed event is a dead letter with reason `signature` (403
   * `SB_SIGNATURE_INVALID` over HTTP). See docs/security.md, Signed messages.
   */
  readonly signing?: SigningOptions;
}

/** The dead-letter side: listing, inspecting, replaying. */
export interface DeadLetters {
  list(options?: DeadLetterListOptions): Promise<ListPage<DeadLetterSummary>>;
  get(id: string): Promise<DeadLetter | undefined>;
  replay(selector: ReplaySelector, options?: ReplayOptions): Promise<ReplayResult>;
}

export interface Messaging {
  readonly service: string;
  readonly group: string;
  // --- publishing
  send<C extends AnyContract, K extends MessageName<C>>(
    contract: C,
    name: K,
    data: MessageInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent>;
  invoke<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    name: K,
    input: CallInput<C, K>,
    options?: PublishOptions,
  ): Promise<Sent>;
  emit<C extends AnyContract, K extends EventName<C>>(contract: C, name: K, ...args: EmitArgs<C, K>): Promise<Sent>;
  sendBatch<C extends AnyContract>(contract: C, messages: readonly BatchMessage<C>[]): Promise<Sent[]>;
  emitBatch<C extends AnyContract>(contract: C, events: readonly BatchEvent<C>[]): Promise<Sent[]>;
  // --- the transactional outbox: the same messages, built (validated, claim-checked, encoded) but not published
  /** What `send` would publish, for `outbox.enqueue` inside the application's transaction. Its relay declares the receiver's group. */
  prepareSend<C extends AnyContract, K extends MessageName<C>>(
    contract: C,
    name: K,
    data: MessageInput<C, K>,
    options?: PublishOptions,
  ): Promise<OutboxMessage>;
  /** What `invoke` would publish, for the outbox. */
  prepareInvoke<C extends AnyContract, K extends OperationName<C>>(
    contract: C,
    name: K,
    input: CallInput<C, K>,
    options?: PublishOptions,
  ): Promise<OutboxMessage>;
  /** What `emit` would publish (on the reliable broker), for the outbox. */
  prepareEmit<C extends AnyContract, K extends EventName<C>>(contract: C, name: K, ...args: EmitArgs<C, K>): Promise<OutboxMessage>;
  // --- consuming
  handle<C extends AnyContract, K extends MessageName<C>>(contract: C, name: K, handler: MessageHandler<C, K>): this;
  serve<C extends AnyContract>(contract: C, handlers: Handlers<C>): this;
  /**
   * Handles event `pattern` of `contract`. With `filter`, a CloudEvents SQL (CESQL v1) expression
   * over the event's attributes (`subject LIKE 'orders/%' AND priority > 2`), parsed once here
   * (`SB_FILTER_INVALID` with the position when it does not parse or calls an unknown function):
   * events it does not match are acknowledged without running the handler and counted in
   * `filtered`, never dead-lettered. See `docs/filters.md`.
   */
  on<C extends AnyContract, P extends EventName<C> | EventPattern>(
    contract: C,
    pattern: P,
    handler: EventHandler<C, P>,
    options?: { readonly filter?: string },
  ): this;
  /** Events acknowledged without running because their handler's filter did not match. */
  readonly filtered: number;
  /** Subscribes (declaring the group) to every topic the handlers need. */
  start(): Promise<void>;
  /** Stops taking deliveries, lets in-flight ones finish (the broker releases what is left). Does not close the broker or stores. */
  close(): Promise<void>;
  /**
   * Runs a CloudEvent received outside the broker through the consumer pipeline (what `POST /events`
   * does). `sender`: the principal that delivered it, kept with its receipt (see `Receipt.sender`).
   */
  receive(event: CloudEvent, sender?: string): Promise<Outcome>;
  // --- receipts and dead letters
  readonly receipts: Receipts;
  readonly deadLetters: DeadLetters;
  /** Same as `deadLetters.replay`. */
  replay(selector: ReplaySelector, options?: ReplayOptions): Promise<ReplayResult>;
  /** HTTP routes for `createHttpService({ routes })`: `GET /receipts/{id}` (with receipts) and `POST /events`. */
  routes(options?: MessagingRoutesOptions): HttpRoute[];
}

/**
 * One service's messaging: typed senders from contracts, and a consumer (group = the service
 * name) with the reliability pipeline. Each delivery is decoded once, then, outer to inner:
 * [signature] → inbox/receipts → dead letter → retry → route → claim check → validate → timeout → [middleware] → handler.
 * Events declared at-most-once travel a second broker when `atMostOnce` is given, on the same track
 * with the at-most-once delivery policy: route → claim check → validate → handler, nothing kept.
 */
export function createMessaging(options: MessagingOptions): Messaging {
  const { broker, service } = options;
  if (typeof service !== 'string' || service === '') throw new SwitchboardError('SB_CONFIG_INVALID', { detail: '`service` is required' });
  if (options.deadLetters === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: '`deadLetters` is required: a DeadLetterStore, or false to drop dead letters',
    });
  }
  checkMainBroker(broker);
  if (options.atMostOnce !== undefined) checkAtMostOnceBroker(options.atMostOnce.broker);
  const group = options.group ?? service;
  const blobs =
    options.blobs === undefined
      ? []
      : Array.isArray(options.blobs)
        ? [...(options.blobs as readonly BlobStore[])]
        : [options.blobs as BlobStore];
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 30_000;
  const resultLimit = options.resultLimit ?? 4096;
  const maxInFlight = options.maxInFlight ?? 64;
  const deadLetterStore = options.deadLetters === false ? undefined : options.deadLetters;
  const receiptStore = options.receipts;
  const claimCheckConfig = {
    blobs: blobs[0],
    thresholdBytes: options.claimCheck?.thresholdBytes ?? 256 * 1024,
    expiresInMs: options.claimCheck?.expiresInMs,
  };

  const signing = options.signing === undefined ? undefined : createMessageSigning(options.signing, service);
  const signer = signing?.signer;
  const verify = signing?.check;

  const reliable: Lane = {
    broker,
    config: { service, binding: broker.binding, ...claimCheckConfig, signer },
    declareReceivers: options.declareReceiverGroups ?? true,
  };
  const fastBroker = options.atMostOnce?.broker;
  const fastBinding =
    fastBroker === undefined ? undefined : withMode(fastBroker.binding, options.atMostOnce?.mode ?? fastBroker.binding.mode);
  const fast: Lane | undefined =
    fastBroker === undefined || fastBinding === undefined
      ? undefined
      : { broker: fastBroker, config: { service, binding: fastBinding, ...claimCheckConfig, signer }, declareReceivers: false };
  const publisher = new Publisher(reliable, fast);

  const routes = new RouteTable();
  const deadLetters = new DeadLetterWriter({ store: deadLetterStore });
  const middlewares: Middleware[] = [];
  if (receiptStore !== undefined) {
    middlewares.push(
      inbox({
        store: receiptStore,
        dedupe: options.inbox ?? true,
        owner: `${group}-${newSecretId()}`,
        leaseMs: options.inboxLeaseMs ?? handlerTimeoutMs + 5_000,
      }),
    );
  }
  middlewares.push(
    deadLetter(deadLetters),
    retry({
      maxAttempts: options.retry?.maxAttempts ?? 5,
      ...(options.retry?.backoff === undefined ? {} : { backoff: options.retry.backoff }),
    }),
    route(routes),
    claimCheck(blobs),
    validateData(),
    timeout(handlerTimeoutMs),
    ...(options.middleware ?? []),
  );
  const handler = handlerStep(handlerTimeoutMs, resultLimit);
  const consumer = new Consumer({
    broker,
    group,
    guarantee: 'at-least-once',
    topics: () => {
      routes.freeze();
      return routes.topics();
    },
    pipeline: compose(middlewares, handler),
    deadLetters,
    admit: (topic, event) => routes.admits(topic, event),
    filterOf: (topic) => routes.filterOf(topic),
    ...(verify === undefined ? {} : { verify }),
    maxInFlight,
    ackTimeoutMs: options.ackTimeoutMs ?? handlerTimeoutMs + 10_000,
  });
  const fastTopics = new Set<string>();
  const fastConsumer =
    fastBroker === undefined
      ? undefined
      : new Consumer({
          broker: fastBroker,
          group,
          guarantee: 'at-most-once',
          topics: () => [...fastTopics],
          pipeline: compose([route(routes), onlyAtMostOnce(), claimCheck(blobs), validateData()], handler),
          deadLetters: undefined,
          admit: (topic, event) => routes.admits(topic, event),
          filterOf: (topic) => routes.filterOf(topic),
          ...(verify === undefined ? {} : { verify }),
          maxInFlight: options.atMostOnce?.maxInFlight ?? maxInFlight,
          ackTimeoutMs: options.ackTimeoutMs ?? handlerTimeoutMs + 10_000,
        });

  const receipts: Receipts =
    receiptStore === undefined
      ? {
          get: () => Promise.reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'receipts need a ReceiptStore' })),
          wait: () => Promise.reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'receipts need a ReceiptStore' })),
        }
      : createReceipts(receiptStore);

  const requireDeadLetters = (): DeadLetterStore => {
    if (deadLetterStore === undefined) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'no dead-letter store is configured' });
    return deadLetterStore;
  };
  const replay = (selector: ReplaySelector, replayOptions?: ReplayOptions): Promise<ReplayResult> =>
    replayDeadLetters({ broker, deadLetters: requireDeadLetters(), receipts: receiptStore }, selector, replayOptions);
  const receive = (event: CloudEvent, sender?: string): Promise<Outcome> =>
    consumer.receive(event, routes.topicOf(event.type) ?? `${group}.unrouted`, sender);

  const messaging: Messaging = {
    service,
    group,
    get filtered() {
      return consumer.filtered + (fastConsumer?.filtered ?? 0);
    },
    send: (contract, name, data, sendOptions) => publisher.send(contract, name, data, sendOptions),
    invoke: (contract, name, input, sendOptions) => publisher.invoke(contract, name, input, sendOptions),
    emit: (contract, name, ...args) => publisher.emit(contract, name, ...args),
    sendBatch: (contract, messages) => publisher.sendBatch(contract, messages),
    emitBatch: (contract, events) => publisher.emitBatch(contract, events),
    prepareSend: (contract, name, data, sendOptions) => prepared(publisher.build('message', contract, name, data, sendOptions)),
    prepareInvoke: (contract, name, input, sendOptions) => prepared(publisher.build('operation', contract, name, input, sendOptions)),
    prepareEmit: (contract, name, ...args) => {
      const [data, emitOptions] = args as [unknown, PublishOptions | undefined];
      return prepared(publisher.build('event', contract, name, data, emitOptions));
    },
    handle(contract, name, handler) {
      routes.message(contract, name, handler as (data: unknown, context: never) => unknown);
      return this;
    },
    serve(contract, handlers) {
      routes.operations(contract, handlers as unknown as Handlers<AnyContract>);
      return this;
    },
    on(contract, pattern, handler, onOptions) {
      const filter = onOptions?.filter === undefined ? undefined : compileFilter(onOptions.filter);
      routes.event(contract, pattern, handler as (data: unknown, context: never) => unknown, filter);
      if (fastConsumer !== undefined && hasAtMostOnceEvents(contract)) fastTopics.add(eventsTopic(contract));
      return this;
    },
    start: async () => {
      await Promise.all([consumer.start(), fastConsumer?.start()]);
    },
    close: async () => {
      await Promise.all([consumer.close(), fastConsumer?.close()]);
    },
    receive,
    receipts,
    deadLetters: {
      list: (listOptions) => requireDeadLetters().list(listOptions),
      get: (id) => requireDeadLetters().get(id),
      replay,
    },
    replay,
    routes(routeOptions = {}) {
      const out: HttpRoute[] = [];
      if (receiptStore !== undefined)
        out.push(
          receiptsRoute(receipts, {
            ...(routeOptions.receiptsPath === undefined ? {} : { path: routeOptions.receiptsPath }),
            ...(routeOptions.receiptsReadScope === undefined ? {} : { readScope: routeOptions.receiptsReadScope }),
          }),
        );
      out.push(
        cloudEventsRoute(receive, {
          ...(routeOptions.eventsPath === undefined ? {} : { path: routeOptions.eventsPath }),
          ...(routeOptions.eventsScopes === undefined ? {} : { scopes: routeOptions.eventsScopes }),
          verify: (event) => consumer.verifyOrThrow(event),
        }),
      );
      return out;
    },
  };
  return messaging;
}

/** `messaging.routes(options)`. */
export interface MessagingRoutesOptions {
  readonly receiptsPath?: string;
  readonly eventsPath?: string;
  /** With authentication: scopes a principal needs to post events. Default none (authenticated is enough). */
  readonly eventsScopes?: readonly string[];
  /** With authentication: the scope that reads every receipt; without it a principal reads only its own. */
  readonly receiptsReadScope?: string;
}

/** The outbox form of a built message: the message itself, and the receiver group its relay declares. */
async function prepared(built: Promise<{ message: OutgoingMessage; receiverGroup: string | undefined }>): Promise<OutboxMessage> {
  const { message, receiverGroup } = await built;
  return receiverGroup === undefined ? message : { ...message, receiverGroup };
}
