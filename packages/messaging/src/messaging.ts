import type {
  AnyContract,
  BlobStore,
  Broker,
  CallInput,
  CloudEvent,
  CloudEventsBinding,
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
  ReceiptStore,
} from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { newSecretId } from '@switchboard/core/kit';
import type { HttpRoute } from '@switchboard/http';
import { type AtMostOnceOptions, createAtMostOnceSide, emitBatchSplit, isAtMostOnceEvent } from './at-most-once.js';
import { bindingForBroker } from './binding.js';
import { Consumer } from './consumer.js';
import { handlerStep } from './handler-step.js';
import { cloudEventsRoute } from './http-events.js';
import { receiptsRoute } from './http-receipts.js';
import { claimCheck } from './middleware/claim-check.js';
import { deadLetter } from './middleware/dead-letter.js';
import { decode } from './middleware/decode.js';
import { inbox } from './middleware/inbox.js';
import { retry } from './middleware/retry.js';
import { timeout } from './middleware/timeout.js';
import { validateData } from './middleware/validate.js';
import { compose, type Middleware, type Outcome } from './pipeline.js';
import { type BatchEvent, type BatchMessage, Publisher } from './publisher.js';
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
  /** Header binding of CloudEvents on the broker. Default: by broker (`bindingForBroker`). */
  readonly binding?: CloudEventsBinding;
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
   * A second, at-most-once broker (core NATS, Redis pub/sub) for events declared
   * `delivery: 'at-most-once'`: they are emitted and received through it, bypassing the inbox,
   * receipts, retries and dead letters. Without it such events travel the reliable path like the others.
   */
  readonly atMostOnce?: AtMostOnceOptions;
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
  // --- consuming
  handle<C extends AnyContract, K extends MessageName<C>>(contract: C, name: K, handler: MessageHandler<C, K>): this;
  serve<C extends AnyContract>(contract: C, handlers: Handlers<C>): this;
  on<C extends AnyContract, P extends EventName<C> | EventPattern>(contract: C, pattern: P, handler: EventHandler<C, P>): this;
  /** Subscribes (declaring the group) to every topic the handlers need. */
  start(): Promise<void>;
  /** Stops taking deliveries, lets in-flight ones finish (the broker releases what is left). Does not close the broker or stores. */
  close(): Promise<void>;
  /** Runs a CloudEvent received outside the broker through the consumer pipeline (what `POST /events` does). */
  receive(event: CloudEvent): Promise<Outcome>;
  // --- receipts and dead letters
  readonly receipts: Receipts;
  readonly deadLetters: DeadLetters;
  /** Same as `deadLetters.replay`. */
  replay(selector: ReplaySelector, options?: ReplayOptions): Promise<ReplayResult>;
  /** HTTP routes for `createHttpService({ routes })`: `GET /receipts/{id}` (with receipts) and `POST /events`. */
  routes(options?: { readonly receiptsPath?: string; readonly eventsPath?: string }): HttpRoute[];
}

/**
 * One service's messaging: typed senders from contracts, and a consumer (group = the service
 * name) with the reliability pipeline, outer to inner:
 * inbox/receipts → dead letter → retry → decode → claim check → validate → timeout → [middleware] → handler.
 */
export function createMessaging(options: MessagingOptions): Messaging {
  const { broker, service } = options;
  if (typeof service !== 'string' || service === '') throw new SwitchboardError('SB_CONFIG_INVALID', { detail: '`service` is required' });
  if (options.deadLetters === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: '`deadLetters` is required: a DeadLetterStore, or false to drop dead letters',
    });
  }
  const group = options.group ?? service;
  const binding = options.binding ?? bindingForBroker(broker);
  const blobs =
    options.blobs === undefined
      ? []
      : Array.isArray(options.blobs)
        ? [...(options.blobs as readonly BlobStore[])]
        : [options.blobs as BlobStore];
  const handlerTimeoutMs = options.handlerTimeoutMs ?? 30_000;
  const deadLetterStore = options.deadLetters === false ? undefined : options.deadLetters;
  const receiptStore = options.receipts;

  const publisher = new Publisher(
    broker,
    {
      service,
      binding,
      blobs: blobs[0],
      thresholdBytes: options.claimCheck?.thresholdBytes ?? 256 * 1024,
      expiresInMs: options.claimCheck?.expiresInMs,
    },
    options.declareReceiverGroups ?? true,
  );

  const routes = new RouteTable();
  const fast =
    options.atMostOnce === undefined
      ? undefined
      : createAtMostOnceSide(options.atMostOnce, {
          service,
          group,
          binding: options.binding,
          routes,
          blobs,
          thresholdBytes: options.claimCheck?.thresholdBytes ?? 256 * 1024,
          expiresInMs: options.claimCheck?.expiresInMs,
          handlerTimeoutMs,
          resultLimit: options.resultLimit ?? 4096,
          maxInFlight: options.maxInFlight ?? 64,
        });
  const middlewares: Middleware[] = [];
  if (receiptStore !== undefined) {
    middlewares.push(
      inbox({
        store: receiptStore,
        binding,
        dedupe: options.inbox ?? true,
        owner: `${group}-${newSecretId()}`,
        leaseMs: options.inboxLeaseMs ?? handlerTimeoutMs + 5_000,
      }),
    );
  }
  middlewares.push(
    deadLetter({ store: deadLetterStore, binding }),
    retry({
      maxAttempts: options.retry?.maxAttempts ?? 5,
      ...(options.retry?.backoff === undefined ? {} : { backoff: options.retry.backoff }),
    }),
    decode(binding, routes),
    claimCheck(blobs),
    validateData(),
    timeout(handlerTimeoutMs),
    ...(options.middleware ?? []),
  );
  const pipeline = compose(middlewares, handlerStep(handlerTimeoutMs, options.resultLimit ?? 4096));
  const consumer = new Consumer({
    broker,
    group,
    binding,
    routes,
    pipeline,
    maxInFlight: options.maxInFlight ?? 64,
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

  const messaging: Messaging = {
    service,
    group,
    send: (contract, name, data, sendOptions) => publisher.send(contract, name, data, sendOptions),
    invoke: (contract, name, input, sendOptions) => publisher.invoke(contract, name, input, sendOptions),
    emit: (contract, name, ...args) =>
      (fast !== undefined && isAtMostOnceEvent(contract, name) ? fast.publisher : publisher).emit(contract, name, ...args),
    sendBatch: (contract, messages) => publisher.sendBatch(contract, messages),
    emitBatch: (contract, events) =>
      fast === undefined ? publisher.emitBatch(contract, events) : emitBatchSplit(publisher, fast.publisher, contract, events),
    handle(contract, name, handler) {
      routes.message(contract, name, handler as (data: unknown, context: never) => unknown);
      return this;
    },
    serve(contract, handlers) {
      routes.operations(contract, handlers as unknown as Handlers<AnyContract>);
      return this;
    },
    on(contract, pattern, handler) {
      routes.event(contract, pattern, handler as (data: unknown, context: never) => unknown);
      fast?.consumer.track(contract);
      return this;
    },
    start: async () => {
      await Promise.all([consumer.start(), fast?.consumer.start()]);
    },
    close: async () => {
      await Promise.all([consumer.close(), fast?.consumer.close()]);
    },
    receive: (event) => consumer.receive(event),
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
        out.push(receiptsRoute(receipts, routeOptions.receiptsPath === undefined ? {} : { path: routeOptions.receiptsPath }));
      out.push(
        cloudEventsRoute(
          (event) => consumer.receive(event),
          routeOptions.eventsPath === undefined ? {} : { path: routeOptions.eventsPath },
        ),
      );
      return out;
    },
  };
  return messaging;
}
