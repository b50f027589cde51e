import type { AnyContract, BlobStore, Broker, CloudEventsBinding, CloudEventsMode, Delivery, Subscription } from '@switchboard/core';
import { channels, SwitchboardError } from '@switchboard/core';
import { eventsTopic } from './addressing.js';
import { bindingForBroker, contentModeForBroker } from './binding.js';
import { handlerStep } from './handler-step.js';
import { claimCheck } from './middleware/claim-check.js';
import { decode } from './middleware/decode.js';
import { validateData } from './middleware/validate.js';
import { compose, type Inbound, type Step } from './pipeline.js';
import { type BatchEvent, Publisher } from './publisher.js';
import type { RouteTable } from './routes.js';
import type { Sent } from './types.js';

/** The transport for events declared `delivery: 'at-most-once'` (`createMessaging({ atMostOnce })`). */
export interface AtMostOnceOptions {
  /** An at-most-once broker (`capabilities.delivery === 'at-most-once'`): core NATS, Redis pub/sub. */
  readonly broker: Broker;
  /** Handlers running at once per subscription. Default: the messaging `maxInFlight`. */
  readonly maxInFlight?: number;
  /**
   * CloudEvents content mode of the events sent: `structured` (default; one JSON document, see
   * `contentModeForBroker`) or `binary` (attributes in the broker's headers). Receivers read both.
   */
  readonly mode?: CloudEventsMode;
}

/** Whether event `name` of `contract` declares itself at-most-once. */
export function isAtMostOnceEvent(contract: AnyContract, name: string): boolean {
  return contract.events[name]?.delivery === 'at-most-once';
}

/** Whether `contract` declares at least one at-most-once event. */
export function hasAtMostOnceEvents(contract: AnyContract): boolean {
  return Object.values(contract.events).some((definition) => definition.delivery === 'at-most-once');
}

/** Refuses a broker that promises redelivery: it would silently turn fire-and-forget into at-least-once without an inbox. */
export function checkAtMostOnceBroker(broker: Broker): void {
  if (broker.capabilities.delivery !== 'at-most-once') {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `atMostOnce.broker must declare capabilities.delivery 'at-most-once'; ${broker.name} does not`,
    });
  }
}

export interface AtMostOnceConsumerConfig {
  readonly broker: Broker;
  readonly group: string;
  readonly binding: CloudEventsBinding;
  readonly routes: RouteTable;
  readonly blobs: readonly BlobStore[];
  readonly handlerTimeoutMs: number;
  readonly resultLimit: number;
  readonly maxInFlight: number;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The consumer of at-most-once events: one subscription per events topic of a contract that
 * declares such events, on the at-most-once broker, and a short pipeline —
 * decode → claim check → validate → handler. No inbox, no receipts, no retries, no dead letters:
 * whatever fails is dropped and reported on the `switchboard:message:settle` channel
 * (`outcome: 'dropped'`). Events of the topic that are not declared at-most-once are dropped too
 * (they belong on the reliable broker).
 */
export class AtMostOnceConsumer {
  readonly #config: AtMostOnceConsumerConfig;
  readonly #pipeline: Step;
  readonly #topics = new Set<string>();
  readonly #subscriptions: Subscription[] = [];
  readonly #closing = new AbortController();
  #started: Promise<void> | undefined;
  #closed: Promise<void> | undefined;

  constructor(config: AtMostOnceConsumerConfig) {
    this.#config = config;
    const onlyAtMostOnce =
      (next: Step): Step =>
      (message) => {
        const route = message.route!;
        if (route.kind !== 'event' || !isAtMostOnceEvent(route.contract, route.name)) {
          throw new SwitchboardError('SB_UNKNOWN_TYPE', { detail: `${route.type} is not an at-most-once event` });
        }
        return next(message);
      };
    this.#pipeline = compose(
      [decode(config.binding, config.routes), onlyAtMostOnce, claimCheck(config.blobs), validateData()],
      handlerStep(config.handlerTimeoutMs, config.resultLimit),
    );
  }

  /** Notes a contract whose events this service handles; its topic is subscribed when it has at-most-once events. */
  track(contract: AnyContract): void {
    if (hasAtMostOnceEvents(contract)) this.#topics.add(eventsTopic(contract));
  }

  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    const { broker, group, maxInFlight } = this.#config;
    for (const topic of this.#topics) {
      this.#subscriptions.push(await broker.subscribe({ topic, group, maxInFlight }, this.#onDelivery));
    }
  }

  readonly #onDelivery = (delivery: Delivery): Promise<void> => {
    const message: Inbound = { delivery, group: this.#config.group, via: 'broker', attempt: 1, signal: this.#closing.signal };
    if (channels.deliver.hasSubscribers) {
      channels.deliver.publish({ messageId: delivery.id, topic: delivery.topic, attempt: 1, group: message.group });
    }
    let running: Promise<unknown>;
    try {
      running = this.#pipeline(message);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      (outcome) => {
        if (channels.settle.hasSubscribers) {
          const kind = (outcome as { kind: string }).kind;
          channels.settle.publish({ messageId: delivery.id, topic: delivery.topic, type: message.event?.type, outcome: kind });
        }
        return RESOLVED;
      },
      (error: unknown) => {
        if (channels.settle.hasSubscribers) {
          channels.settle.publish({ messageId: delivery.id, topic: delivery.topic, type: message.event?.type, outcome: 'dropped', error });
        }
      },
    );
  };

  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all(this.#subscriptions.splice(0).map((subscription) => subscription.close()));
      this.#closing.abort();
    })();
    return this.#closed;
  }
}

/** The publishing and consuming halves of the at-most-once path, as `createMessaging` wires them. */
export interface AtMostOnceSide {
  readonly publisher: Publisher;
  readonly consumer: AtMostOnceConsumer;
}

export interface AtMostOnceSideConfig {
  readonly service: string;
  readonly group: string;
  readonly binding: CloudEventsBinding | undefined;
  readonly routes: RouteTable;
  readonly blobs: readonly BlobStore[];
  readonly thresholdBytes: number;
  readonly expiresInMs: number | undefined;
  readonly handlerTimeoutMs: number;
  readonly resultLimit: number;
  readonly maxInFlight: number;
}

export function createAtMostOnceSide(options: AtMostOnceOptions, config: AtMostOnceSideConfig): AtMostOnceSide {
  const { broker } = options;
  checkAtMostOnceBroker(broker);
  const binding = config.binding ?? bindingForBroker(broker);
  const publisher = new Publisher(
    broker,
    {
      service: config.service,
      binding,
      mode: options.mode ?? contentModeForBroker(broker),
      blobs: config.blobs[0],
      thresholdBytes: config.thresholdBytes,
      expiresInMs: config.expiresInMs,
    },
    false,
  );
  const consumer = new AtMostOnceConsumer({
    broker,
    group: config.group,
    binding,
    routes: config.routes,
    blobs: config.blobs,
    handlerTimeoutMs: config.handlerTimeoutMs,
    resultLimit: config.resultLimit,
    maxInFlight: options.maxInFlight ?? config.maxInFlight,
  });
  return { publisher, consumer };
}

/** `emitBatch` across both paths: at-most-once events on the fast broker, the others on the reliable one; results in input order. */
export async function emitBatchSplit<C extends AnyContract>(
  reliable: Publisher,
  fast: Publisher,
  contract: C,
  events: readonly BatchEvent<C>[],
): Promise<Sent[]> {
  const slow: BatchEvent<C>[] = [];
  const quick: BatchEvent<C>[] = [];
  const order: boolean[] = events.map((event) => isAtMostOnceEvent(contract, event.name));
  for (const [i, event] of events.entries()) (order[i] ? quick : slow).push(event);
  const [slowSent, quickSent] = await Promise.all([
    slow.length === 0 ? [] : reliable.emitBatch(contract, slow),
    quick.length === 0 ? [] : fast.emitBatch(contract, quick),
  ]);
  let s = 0;
  let q = 0;
  return order.map((isQuick) => (isQuick ? quickSent[q++]! : slowSent[s++]!));
}
