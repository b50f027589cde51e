import type { CloudEventsBinding } from './cloudevents/event.js';
import { SwitchboardError } from './errors.js';

/**
 * The broker contract: the only thing a messaging engine has to implement. Everything above it
 * (contracts, envelopes, retries, dead letters, inbox, receipts, claim check, outbox) is built on
 * these few methods, so it works the same on every engine.
 *
 * Semantics every adapter keeps (checked by the conformance suite in `@switchboard/testkit`):
 * - `publish` resolves only once the broker has durably accepted the message (publisher confirm,
 *   JetStream PubAck, SQLite commit, ...). Many publishes may be in flight at once.
 * - A consumer group receives every message published to the topic after the group was declared
 *   (by `declareGroup` or the first `subscribe`). Subscribers of one group share the messages;
 *   every group gets its own copy.
 * - Delivery is at-least-once. A delivery that is neither acked nor nacked within `ackTimeoutMs`
 *   (or whose consumer died) is delivered again, with `attempt` increased.
 * - If the handler rejects without settling, the delivery is nacked with no delay.
 *
 * An engine that declares `capabilities.delivery: 'at-most-once'` (core NATS, Redis pub/sub) keeps
 * a weaker contract instead: `publish` resolves once the client has handed the message to the
 * server connection (no broker confirm exists), a group receives what is published while one of its
 * subscribers is connected, each message reaches each group at most once, and `ack` / `nack` are
 * no-ops: nothing is ever redelivered and nothing is kept.
 */

export type Headers = Readonly<Record<string, string>>;

export interface OutgoingMessage {
  /**
   * The transport id: what engines that deduplicate publishes use (`Nats-Msg-Id`, the AMQP
   * `message-id` property, SQS `MessageDeduplicationId`). It is the CloudEvent `id` on a first
   * publish and differs on a replay (`<id>~r<n>`), so the engine does not drop a replay as a
   * duplicate. It is never the MessageId a consumer sees: that is the CloudEvent `id` inside.
   */
  readonly id: string;
  readonly topic: string;
  /** Transport headers; CloudEvents attributes travel here in binary mode. */
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** Ordering key: same-key messages are delivered in order where `capabilities.ordering` says so. */
  readonly key?: string;
}

export interface Delivery {
  /**
   * The transport id of the message (`OutgoingMessage.id` as published, or the engine's own id for
   * a message a foreign producer sent without one; possibly `''`). A hint only: the MessageId is the
   * CloudEvent `id` the messaging layer decodes from the headers and body.
   */
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  /** 1 on the first delivery, then 2, 3, ... */
  readonly attempt: number;
  /** Acknowledges: the message is done for this group. Idempotent. */
  ack(): Promise<void>;
  /** Gives the message back for redelivery after `delayMs` (0 = as soon as possible). Idempotent. */
  nack(delayMs?: number): Promise<void>;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface SubscribeOptions {
  readonly topic: string;
  /** Consumer group: balanced within the group, fanned out across groups. */
  readonly group: string;
  /** Most deliveries handed to the handler and not yet settled (backpressure). Default 64. */
  readonly maxInFlight?: number;
  /** How long a delivery may stay unsettled before it is redelivered. Default 30 000 ms. */
  readonly ackTimeoutMs?: number;
  /**
   * A CloudEvents SQL (CESQL v1) expression of what the group's handlers take. An engine that can
   * filter on the server (SNS filter policies) may push down what it can express exactly or as a
   * superset; engines that cannot ignore it. The consumer evaluates the full filter regardless.
   */
  readonly filter?: string;
}

/** `maxInFlight` when a subscription does not say (see `SubscribeOptions`). */
export const DEFAULT_MAX_IN_FLIGHT = 64;
/** `ackTimeoutMs` when a subscription does not say (see `SubscribeOptions`). */
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;

/**
 * `SubscribeOptions` checked, with the defaults filled in: `maxInFlight` a positive integer,
 * `ackTimeoutMs` a positive number; anything else is `SB_CONFIG_INVALID`. (At-most-once brokers
 * check `ackTimeoutMs` too, though nothing is redelivered: the contract is the same everywhere.)
 */
export function resolveSubscribeOptions(
  options: SubscribeOptions,
  limits: { readonly maxInFlight?: number; readonly integerAckTimeout?: boolean } = {},
): { maxInFlight: number; ackTimeoutMs: number } {
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  const ackTimeoutMs = options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
  const most = limits.maxInFlight;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || (most !== undefined && maxInFlight > most)) {
    const range = most === undefined ? 'a positive integer' : `an integer from 1 to ${most}`;
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `maxInFlight must be ${range}, got ${maxInFlight}` });
  }
  if (!Number.isFinite(ackTimeoutMs) || ackTimeoutMs <= 0 || (limits.integerAckTimeout === true && !Number.isInteger(ackTimeoutMs))) {
    const kind = limits.integerAckTimeout === true ? 'a positive integer' : 'a positive number';
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `ackTimeoutMs must be ${kind}, got ${ackTimeoutMs}` });
  }
  return { maxInFlight, ackTimeoutMs };
}

export interface Subscription {
  readonly topic: string;
  readonly group: string;
  /**
   * Stops receiving. Deliveries already handed to the handler are awaited (up to the adapter's
   * drain timeout); whatever is left unsettled is released for redelivery, never lost.
   */
  close(): Promise<void>;
}

export type Ordering =
  /** No ordering promise. */
  | 'none'
  /** Messages with the same `key` are delivered in publish order to a group (one at a time per key). */
  | 'per-key'
  /** All messages of a topic are delivered in publish order (with maxInFlight 1). */
  | 'per-topic';

/**
 * - `at-least-once`: confirmed publishes, redelivery until acked (the default when not declared).
 * - `at-most-once`: fire-and-forget. No confirm, no persistence, no redelivery; `ack` and `nack`
 *   are no-ops. A message published while a group has no subscriber, or lost with a connection or a
 *   slow consumer, is gone.
 */
export type DeliveryGuarantee = 'at-least-once' | 'at-most-once';

export interface BrokerCapabilities {
  /** What delivery promises. Undefined means `at-least-once` (adapters written before the field existed). */
  readonly delivery?: DeliveryGuarantee;
  /** Survives a restart of the broker (and of the process, for embedded brokers). */
  readonly persistent: boolean;
  /** Several processes can publish and consume through it. */
  readonly multiProcess: boolean;
  readonly ordering: Ordering;
  /** `nack(delayMs)` is honoured by the engine itself (not only by holding the message in memory). */
  readonly delayedRedelivery: boolean;
  /** The engine drops a second publish with the same MessageId within a window. */
  readonly publishDeduplication: boolean;
  /** Largest message body the engine takes, in bytes. */
  readonly maxMessageBytes: number;
}

/**
 * What a durable queue shared by several processes declares (SQLite, Redis Streams, PostgreSQL):
 * at-least-once, persistent, per-topic order, nack delays kept by the engine, no publish
 * deduplication; `overrides` for what differs (e.g. `persistent` on a Redis without fsync).
 */
export function queueCapabilities(maxMessageBytes: number, overrides: Partial<BrokerCapabilities> = {}): BrokerCapabilities {
  return {
    delivery: 'at-least-once',
    persistent: true,
    multiProcess: true,
    ordering: 'per-topic',
    delayedRedelivery: true,
    publishDeduplication: false,
    maxMessageBytes,
    ...overrides,
  };
}

/**
 * What an at-most-once push transport (core NATS, Redis pub/sub, MQTT) declares: several processes,
 * and nothing kept, redelivered or deduplicated. Only the ordering and the size limit differ.
 */
export function atMostOnceCapabilities(ordering: Ordering, maxMessageBytes: number): BrokerCapabilities {
  return {
    delivery: 'at-most-once',
    persistent: false,
    multiProcess: true,
    ordering,
    delayedRedelivery: false,
    publishDeduplication: false,
    maxMessageBytes,
  };
}

export interface Broker {
  /** Short engine name, e.g. `memory`, `sqlite`, `nats`. For messages to people; nothing branches on it. */
  readonly name: string;
  readonly capabilities: BrokerCapabilities;
  /**
   * How CloudEvents travel on this engine (its CloudEvents protocol binding, or Switchboard's plain
   * layout where none exists), as data: the messaging layer encodes and decodes every message
   * through it. See `cloudEventsBindings` in `@switchboard/core` and `docs/brokers.md`.
   */
  readonly binding: CloudEventsBinding;
  publish(message: OutgoingMessage): Promise<void>;
  /** Publishes several messages, pipelined or in one transaction; resolves when all are confirmed. */
  publishBatch(messages: readonly OutgoingMessage[]): Promise<void>;
  /** Declares a group so that it keeps messages published before its first subscriber starts. */
  declareGroup(topic: string, group: string): Promise<void>;
  subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription>;
  /**
   * Optional capability: how many messages the engine keeps for `group` on `topic` that the group
   * has not acknowledged yet, as the engine counts them (see `docs/observability.md` for each
   * engine's exact measure); `undefined` when the group does not exist. For metrics (queue depth).
   */
  pending?(topic: string, group: string): Promise<number | undefined>;
  /** Closes every subscription (draining as `Subscription.close` does) and the connection. */
  close(): Promise<void>;
}
