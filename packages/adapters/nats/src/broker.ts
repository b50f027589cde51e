import type { ConsumerConfig, JetStreamClient, JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import {
  type CloudEventsBinding,
  cloudEventsBindings,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_MAX_IN_FLIGHT,
  SwitchboardError,
} from '@switchboard/core';
import { assertMessageSize, idle, resolveSubscribeOptions } from '@switchboard/core/kit';
import { toNatsHeaders } from './binding.js';
import { natsErrors, openConnection } from './connection.js';
import type { TopicNames } from './names.js';
import { assertGroup, safeToken, topicNames } from './names.js';
import type { NatsBrokerOptions, ResolvedNatsOptions } from './options.js';
import { resolveOptions } from './options.js';
import { NatsSubscription } from './subscription.js';

const { toBrokerError, closedError } = natsErrors;

/** Errors worth retrying inside the publish deadline (timeouts, no responders, reconnects). */
function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (['TimeoutError', 'NoRespondersError', 'RequestError', 'ConnectionError'].includes(error.name)) return true;
  return /timeout|no responders|disconnect|connection/i.test(error.message);
}

/** Room kept in `max_payload` for headers (CloudEvents attributes, trace context, MessageId). */
const HEADER_ALLOWANCE = 8 * 1024;
/** JetStream API error codes. */
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;

/** Encoded size of a NATS header block (`NATS/1.0\r\n`, one `name: value\r\n` per value, `\r\n`). */
function headerBytes(headers: MsgHdrs): number {
  let size = 12;
  for (const name of headers.keys()) {
    for (const value of headers.values(name)) size += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
  }
  return size;
}

function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/**
 * Connects to NATS and returns a JetStream broker: one stream per topic, one durable pull consumer
 * per consumer group. See `docs/adapters/nats.md`.
 */
export async function createNatsBroker(options: NatsBrokerOptions): Promise<NatsBroker> {
  const { connection, owns } = await openConnection(options, 'switchboard', 'createNatsBroker');
  try {
    const manager = await jetstreamManager(connection);
    return new NatsBroker(connection, owns, manager, options);
  } catch (error) {
    if (owns) await connection.close().catch(() => {});
    throw toBrokerError(error, 'JetStream is not available');
  }
}

export class NatsBroker implements Broker {
  readonly name = 'nats';
  readonly binding: CloudEventsBinding = cloudEventsBindings.nats;
  readonly capabilities: BrokerCapabilities;
  /** The underlying connection (for status events and diagnostics). */
  readonly connection: NatsConnection;
  readonly #owns: boolean;
  readonly #options: ResolvedNatsOptions;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #maxPayload: number;
  readonly #streams = new Map<string, Promise<TopicNames>>();
  readonly #subscriptions = new Set<NatsSubscription>();
  #closing: Promise<void> | undefined;

  constructor(connection: NatsConnection, owns: boolean, manager: JetStreamManager, options: NatsBrokerOptions) {
    this.connection = connection;
    this.#owns = owns;
    this.#options = resolveOptions(options);
    this.#jsm = manager;
    this.#js = jetstream(connection);
    this.#maxPayload = connection.info?.max_payload ?? 1024 * 1024;
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: this.#options.storage === 'file',
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: true,
      publishDeduplication: true,
      maxMessageBytes: Math.min(options.maxMessageBytes ?? Number.POSITIVE_INFINITY, this.#maxPayload - HEADER_ALLOWANCE),
    };
  }

  async publish(message: OutgoingMessage): Promise<void> {
    this.#assertOpen('publish');
    assertMessageSize(message.body.byteLength, this.capabilities.maxMessageBytes);
    const headers = toNatsHeaders(message.id, message.headers, message.key);
    assertMessageSize(
      message.body.byteLength + headerBytes(headers),
      this.#maxPayload,
      "the message with its headers (the server's max_payload)",
    );
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const names = await this.#ensureStream(message.topic);
        await this.#js.publish(names.subject, message.body, {
          msgID: message.id,
          headers,
          timeout: Math.max(500, Math.min(5000, deadline - Date.now())),
        });
        return;
      } catch (error) {
        if (this.#closing !== undefined) throw closedError('publish');
        if (error instanceof SwitchboardError || !isTransient(error) || Date.now() >= deadline) {
          throw toBrokerError(error, `publish to ${message.topic}`);
        }
        // A republish carries the same MessageId, so JetStream drops it if the first one landed.
        if (error instanceof Error && error.name === 'NoRespondersError') this.#streams.delete(message.topic);
        await idle(Math.min(1000, 25 * 2 ** attempt, Math.max(0, deadline - Date.now())));
      }
    }
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (next < messages.length) {
        const message = messages[next++]!;
        try {
          await this.publish(message);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    const workers = Math.min(messages.length, this.#options.publishConcurrency);
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure !== undefined) throw failure;
  }

  /** The durable consumer's `num_pending` (not yet delivered) plus `num_ack_pending` (delivered, not acknowledged). */
  async pending(topic: string, group: string): Promise<number | undefined> {
    const names = (await this.#streams.get(topic)?.catch(() => undefined)) ?? topicNames(this.#options.prefix, topic);
    try {
      const info = await this.#jsm.consumers.info(names.stream, safeToken(group));
      return info.num_pending + info.num_ack_pending;
    } catch (error) {
      if (apiCode(error) === CONSUMER_NOT_FOUND || apiCode(error) === STREAM_NOT_FOUND) return undefined;
      throw toBrokerError(error, `consumer ${group} on ${names.stream}`);
    }
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen('declareGroup');
    await this.#ensureConsumer(topic, group, DEFAULT_MAX_IN_FLIGHT, DEFAULT_ACK_TIMEOUT_MS, false);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
    const { stream, durable } = await this.#ensureConsumer(options.topic, options.group, maxInFlight, ackTimeoutMs, true);
    let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>>;
    try {
      consumer = await this.#js.consumers.get(stream, durable);
    } catch (error) {
      throw toBrokerError(error, `consumer ${durable} on ${stream}`);
    }
    this.#assertOpen('subscribe');
    const subscription = new NatsSubscription({
      topic: options.topic,
      group: options.group,
      consumer,
      handler,
      maxInFlight,
      ackTimeoutMs,
      drainTimeoutMs: this.#options.drainTimeoutMs,
      fetchExpiresMs: this.#options.fetchExpiresMs,
      flush: this.#options.doubleAck ? undefined : () => this.connection.flush(),
      onClosed: (closed) => this.#subscriptions.delete(closed),
    });
    this.#subscriptions.add(subscription);
    subscription.start();
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

  #assertOpen(what: string): void {
    if (this.#closing !== undefined || this.connection.isClosed()) throw closedError(what);
  }

  #ensureStream(topic: string): Promise<TopicNames> {
    let pending = this.#streams.get(topic);
    if (pending === undefined) {
      pending = this.#createStream(topicNames(this.#options.prefix, topic));
      this.#streams.set(topic, pending);
      pending.catch(() => this.#streams.delete(topic));
    }
    return pending;
  }

  async #createStream(names: TopicNames): Promise<TopicNames> {
    const o = this.#options;
    const config: Partial<StreamConfig> & { name: string } = {
      name: names.stream,
      subjects: [names.subject],
      storage: o.storage === 'file' ? StorageType.File : StorageType.Memory,
      num_replicas: o.replicas,
      retention: o.retention === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_age: nanos(o.maxAgeMs),
      duplicate_window: nanos(o.duplicateWindowMs),
    };
    let addError: unknown;
    for (let tries = 0; ; tries++) {
      try {
        const info = await this.#jsm.streams.info(names.stream);
        if (!info.config.subjects?.includes(names.subject)) {
          throw new SwitchboardError('SB_CONFIG_INVALID', {
            detail: `stream ${names.stream} exists but does not capture subject ${names.subject}`,
          });
        }
        return names;
      } catch (error) {
        if (apiCode(error) !== STREAM_NOT_FOUND || tries > 0) throw toBrokerError(addError ?? error, `stream ${names.stream}`);
      }
      try {
        await this.#jsm.streams.add(config);
        return names;
      } catch (error) {
        // A stream of another name already captures the subject (one made under an earlier naming
        // rule, or by an operator): use it, since a subject belongs to one stream only.
        const owner = await this.#jsm.streams.find(names.subject).catch(() => undefined);
        if (owner !== undefined && owner !== names.stream) return { ...names, stream: owner };
        // Another process may have created it at the same moment: look again once. If it is still
        // missing, the reason the add failed (e.g. subjects overlapping another stream) is the one to report.
        addError = error;
      }
    }
  }

  async #ensureConsumer(
    topic: string,
    group: string,
    maxInFlight: number,
    ackTimeoutMs: number,
    updateExisting: boolean,
  ): Promise<{ stream: string; durable: string }> {
    assertGroup(group);
    const names = await this.#ensureStream(topic);
    const durable = safeToken(group);
    const o = this.#options;
    const wanted = {
      ack_wait: nanos(ackTimeoutMs),
      max_ack_pending: Math.max(o.maxAckPending, maxInFlight),
      max_deliver: o.maxDeliver,
    };
    for (let tries = 0; ; tries++) {
      try {
        const info = await this.#jsm.consumers.info(names.stream, durable);
        const current = info.config;
        const differs =
          current.ack_wait !== wanted.ack_wait ||
          (current.max_ack_pending ?? 0) < wanted.max_ack_pending ||
          current.max_deliver !== wanted.max_deliver;
        if (updateExisting && differs) {
          await this.#jsm.consumers.update(names.stream, durable, {
            ...wanted,
            max_ack_pending: Math.max(current.max_ack_pending ?? 0, wanted.max_ack_pending),
          });
        }
        return { stream: names.stream, durable };
      } catch (error) {
        if (apiCode(error) !== CONSUMER_NOT_FOUND || tries > 0) throw toBrokerError(error, `consumer ${durable} on ${names.stream}`);
      }
      const config: Partial<ConsumerConfig> = {
        ...wanted,
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        // A group gets what is published after it was declared, not the stream's history.
        deliver_policy: DeliverPolicy.New,
      };
      try {
        await this.#jsm.consumers.add(names.stream, config);
        return { stream: names.stream, durable };
      } catch {
        // Created concurrently by another subscriber: look again once.
      }
    }
  }
}
