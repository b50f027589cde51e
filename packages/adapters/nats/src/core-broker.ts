import type { Msg, NatsConnection } from '@nats-io/nats-core';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError, withMode } from '@switchboard/core';
import {
  AtMostOnceDelivery,
  assertMessageSize,
  type DroppedDelivery,
  PushSubscription,
  resolveSubscribeOptions,
} from '@switchboard/core/kit';
import type { ReceivedHeaders } from './binding.js';
import { type ConnectionSource, natsErrors, openConnection } from './connection.js';
import { coreHeaders, readCoreHeaders } from './core-headers.js';
import { assertGroup, assertPrefix, assertTopic } from './names.js';

const { toBrokerError, closedError } = natsErrors;

export interface NatsCoreBrokerOptions extends ConnectionSource {
  /** Namespace of the subjects: `<prefix>.<topic>`. Default `sb-core` (apart from JetStream's `sb`, so no stream captures them). */
  readonly prefix?: string;
  /**
   * When `publish` resolves. `flush` (default): once the server answered a PING sent after the
   * message, i.e. it has read the message and routed it to the subscriptions it had at that moment.
   * One PING serves every publish of the same event-loop turn. `none`: as soon as the client has
   * queued the message for its socket. Neither is a delivery confirmation: none exists in core NATS.
   */
  readonly confirm?: 'flush' | 'none';
  /** Largest body accepted, in bytes. Default: the server's `max_payload` minus 8 KiB kept for headers. */
  readonly maxMessageBytes?: number;
  /** Deliveries waiting for a free `maxInFlight` slot, per subscription, before new ones are dropped. Default 100 000. */
  readonly maxPending?: number;
  /** How long closing waits for running and queued handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Told about every delivery dropped on this side (overflow, failed handler, close). */
  readonly onDrop?: (drop: DroppedDelivery) => void;
}

const HEADER_ALLOWANCE = 8 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Connects to NATS and returns an at-most-once broker on core NATS subjects: no stream, no
 * consumer, no acknowledgement. Groups are queue groups (balanced within a group, every group gets
 * its copy). See `docs/adapters/nats.md`.
 */
export async function createNatsCoreBroker(options: NatsCoreBrokerOptions): Promise<NatsCoreBroker> {
  const { connection, owns } = await openConnection(options, 'switchboard-core', 'createNatsCoreBroker');
  return new NatsCoreBroker(connection, owns, options);
}

/** A core NATS delivery: its headers are read from the message's bytes on first use. */
class CoreDelivery extends AtMostOnceDelivery {
  readonly #msg: Msg;

  constructor(topic: string, msg: Msg) {
    super(topic, msg.data);
    this.#msg = msg;
  }

  protected readFields(): ReceivedHeaders {
    return readCoreHeaders(this.#msg);
  }
}

export class NatsCoreBroker implements Broker {
  readonly name = 'nats-core';
  readonly binding: CloudEventsBinding = withMode(cloudEventsBindings.nats, 'structured');
  readonly capabilities: BrokerCapabilities;
  /** The underlying connection (for status events and diagnostics). */
  readonly connection: NatsConnection;
  readonly #owns: boolean;
  readonly #prefix: string;
  readonly #flush: boolean;
  readonly #maxPayload: number;
  readonly #maxPending: number;
  readonly #drainTimeoutMs: number;
  readonly #onDrop: ((drop: DroppedDelivery) => void) | undefined;
  readonly #subjects = new Map<string, string>();
  readonly #subscriptions = new Set<PushSubscription>();
  /** The flush shared by the publishes of the current event-loop turn. */
  #pendingFlush: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(connection: NatsConnection, owns: boolean, options: NatsCoreBrokerOptions) {
    this.connection = connection;
    this.#owns = owns;
    this.#prefix = options.prefix ?? 'sb-core';
    assertPrefix(this.#prefix);
    this.#flush = (options.confirm ?? 'flush') === 'flush';
    this.#maxPayload = connection.info?.max_payload ?? 1024 * 1024;
    this.#maxPending = options.maxPending ?? 100_000;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.#onDrop = options.onDrop;
    if (!Number.isInteger(this.#maxPending) || this.#maxPending < 0) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `maxPending must be a non-negative integer, got ${this.#maxPending}` });
    }
    this.capabilities = {
      delivery: 'at-most-once',
      persistent: false,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: false,
      publishDeduplication: false,
      maxMessageBytes: Math.min(options.maxMessageBytes ?? Number.POSITIVE_INFINITY, this.#maxPayload - HEADER_ALLOWANCE),
    };
  }

  publish(message: OutgoingMessage): Promise<void> {
    try {
      this.#send(message);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#confirm();
  }

  publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    try {
      for (const message of messages) this.#send(message);
    } catch (error) {
      return Promise.reject(error);
    }
    return messages.length === 0 ? RESOLVED : this.#confirm();
  }

  #send(message: OutgoingMessage): void {
    this.#assertOpen('publish');
    assertMessageSize(message.body.byteLength, this.capabilities.maxMessageBytes);
    const headers = coreHeaders(message.id, message.headers, message.key);
    try {
      this.connection.publish(this.#subject(message.topic), message.body, { headers });
    } catch (error) {
      throw toBrokerError(error, `publish to ${message.topic}`);
    }
  }

  /** One PING/PONG for every publish of this turn (or nothing, with `confirm: 'none'`). */
  #confirm(): Promise<void> {
    if (!this.#flush) return RESOLVED;
    if (this.#pendingFlush === undefined) {
      const flushed = new Promise<void>((resolve, reject) => {
        queueMicrotask(() => {
          this.#pendingFlush = undefined;
          this.connection.flush().then(resolve, (error: unknown) => reject(toBrokerError(error, 'flush')));
        });
      });
      this.#pendingFlush = flushed;
    }
    return this.#pendingFlush;
  }

  /** Nothing to declare: a group exists while one of its subscribers is connected. */
  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen('declareGroup');
    assertTopic(topic);
    assertGroup(group);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen('subscribe');
    // ackTimeoutMs is checked for the contract, unused: nothing is ever redelivered.
    const { maxInFlight } = resolveSubscribeOptions(options);
    assertGroup(options.group);
    const { topic, group } = options;
    const subject = this.#subject(topic);
    let stop: () => Promise<void> = () => RESOLVED;
    const subscription = new PushSubscription({
      topic,
      group,
      handler,
      maxInFlight,
      maxPending: this.#maxPending,
      drainTimeoutMs: this.#drainTimeoutMs,
      onDrop: this.#onDrop,
      stop: () => stop(),
      onClosed: (closed) => this.#subscriptions.delete(closed),
    });
    try {
      const natsSubscription = this.connection.subscribe(subject, {
        queue: group,
        callback: (error, msg) => {
          if (error === null) subscription.push(new CoreDelivery(topic, msg));
        },
      });
      stop = async () => {
        if (!natsSubscription.isClosed()) await natsSubscription.drain();
      };
      // Resolves once the server has registered the subscription: what is published after it is routed here.
      await this.connection.flush();
    } catch (error) {
      throw toBrokerError(error, `subscribe to ${topic}`);
    }
    this.#subscriptions.add(subscription);
    return subscription;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close()));
    if (this.#owns) await this.connection.drain().catch(() => this.connection.close());
    else await this.connection.flush().catch(() => {});
  }

  #subject(topic: string): string {
    let subject = this.#subjects.get(topic);
    if (subject === undefined) {
      assertTopic(topic);
      subject = `${this.#prefix}.${topic}`;
      this.#subjects.set(topic, subject);
    }
    return subject;
  }

  #assertOpen(what: string): void {
    if (this.#closing !== undefined || this.connection.isClosed()) throw closedError(what);
  }
}
