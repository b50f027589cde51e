import type {
  Broker,
  BrokerCapabilities,
  BrokerRequests,
  DeliveryHandler,
  Headers,
  OutgoingMessage,
  ReplyMessage,
  RequestDelivery,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import {
  assertMessageSize,
  brokerErrors,
  checkRequestTimeout,
  describeError,
  idle,
  PendingReplies,
  REQUEST_HEADERS,
  readDeadline,
  requestTopic,
  resolveSubscribeOptions,
} from '@switchboard/core/kit';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Message, Options, RecoveringChannelModel } from 'amqplib';
import { connect } from 'amqplib';
import { ATTEMPT_HEADER, copyProperties, fromAmqpProperties, SERVER_HEADERS, toAmqpProperties } from './binding.js';
import { RabbitMqDelivery } from './delivery.js';
import { assertGroup, assertTopic, delayBucket, delayQueueName, exchangeName, groupQueueName } from './names.js';
import type { RabbitMqBrokerOptions, ResolvedRabbitMqOptions } from './options.js';
import { MAX_PREFETCH, resolveOptions } from './options.js';
import { RabbitMqSubscription } from './subscription.js';

/** A refusal for size: the server's `max_message_size`, amqplib's 64 KiB header table, a frame too large. */
function isTooLarge(error: unknown): boolean {
  return /larger than configured max size|max_message_size|Encoded field table|frame size/i.test(describeError(error));
}

/** The server's 404 NOT_FOUND channel close (a passive declare of a missing queue). */
function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 404;
}

const { toBrokerError, closedError } = brokerErrors({ engine: 'RabbitMQ', tooLarge: isTooLarge });

/** Unused delay queues disappear this long after their last declaration (plus their TTL). */
const DELAY_QUEUE_IDLE_MS = 15 * 60_000;
/** A delay queue is declared again when its last declaration is older than this. */
const DELAY_QUEUE_REDECLARE_MS = 5 * 60_000;

/** RabbitMQ's pseudo-queue for direct reply-to: replies go straight to the requesting channel, no queue. */
const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/** Channels of one live connection. */
interface Link {
  readonly model: ChannelModel;
  admin: Channel | undefined;
  publisher: ConfirmChannel | undefined;
  /** Messages the server returned as unroutable, by MessageId, until their confirm arrives. */
  readonly returned: Set<string>;
  readonly exchanges: Set<string>;
  readonly delayQueues: Map<string, number>;
}

interface GroupTopology {
  readonly topic: string;
  readonly queue: string;
}

function withHeartbeat(url: string, seconds: number): string {
  try {
    const parsed = new URL(url);
    if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(seconds));
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * Connects to RabbitMQ and returns a broker: one durable topic exchange per topic, one durable
 * (quorum) queue per consumer group, publisher confirms, manual acks, TTL delay queues for
 * `nack(delayMs)`, automatic reconnect. See `docs/adapters/rabbitmq.md`.
 */
export async function createRabbitMqBroker(options: RabbitMqBrokerOptions): Promise<RabbitMqBroker> {
  const broker = new RabbitMqBroker(options);
  await broker.connect();
  return broker;
}

export class RabbitMqBroker implements Broker {
  readonly name = 'rabbitmq';
  readonly binding: CloudEventsBinding = cloudEventsBindings.amqp;
  readonly capabilities: BrokerCapabilities;
  /**
   * Request/reply with RabbitMQ's direct reply-to: requests go to the topic's `<topic>.requests`
   * exchange (a group queue each, as any topic), mandatory and with a per-message TTL of the request's
   * timeout; replies come straight back to the requesting channel (`amq.rabbitmq.reply-to`), no reply
   * queue. A request no queue is bound to is returned by the server: `SB_NO_RESPONDERS` at once.
   */
  readonly requests: BrokerRequests;
  readonly #options: ResolvedRabbitMqOptions;
  readonly #replies = new PendingReplies();
  #replyChannel: { readonly link: Link; readonly ready: Promise<Channel> } | undefined;
  #nextRequest = 0;
  #requestsClosed = false;
  readonly #groups = new Map<string, GroupTopology>();
  readonly #topics = new Set<string>();
  readonly #subscriptions = new Set<RabbitMqSubscription>();
  #connection: RecoveringChannelModel | undefined;
  #link: Link | undefined;
  #waiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  constructor(options: RabbitMqBrokerOptions) {
    this.#options = resolveOptions(options);
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: true,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: true,
      publishDeduplication: false,
      maxMessageBytes: this.#options.maxMessageBytes,
    };
    const replies = this.#replies;
    this.requests = {
      request: (message, requestOptions) => this.#request(message, requestOptions),
      serve: (serveOptions, handler) => this.#serveRequests(serveOptions, handler),
      get pending() {
        return replies.size;
      },
      close: async () => {
        this.#requestsClosed = true;
        replies.failAll(closedError('request'));
      },
    };
  }

  /** Opens the connection; later losses are recovered automatically. */
  async connect(): Promise<void> {
    const o = this.#options;
    try {
      this.#connection = await connect(withHeartbeat(o.url, o.heartbeatSeconds), {
        recovery: {
          initialDelay: 100,
          maxDelay: o.maxReconnectDelayMs,
          initialMaxRetries: o.connectRetries,
          waitForConnect: false,
          setup: (model: ChannelModel) => this.#setup(model),
        },
      });
      this.#connection.on('error', () => {});
      this.#connection.on('disconnect', () => {
        this.#link = undefined;
      });
      await this.#connection.waitForConnect();
    } catch (error) {
      await this.#connection?.close().catch(() => {});
      throw toBrokerError(error, 'connect');
    }
  }

  /** Runs on every (re)connection: channels, then the known topology, then the subscriptions. */
  async #setup(model: ChannelModel): Promise<void> {
    model.on('error', () => {});
    const link: Link = { model, admin: undefined, publisher: undefined, returned: new Set(), exchanges: new Set(), delayQueues: new Map() };
    await this.#adminChannel(link);
    await this.#publisherChannel(link);
    for (const topic of this.#topics) await this.#declareExchange(link, topic);
    for (const [, group] of this.#groups) await this.#declareQueue(link, group);
    this.#link = link;
    for (const subscription of this.#subscriptions) await subscription.attach(model);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async #adminChannel(link: Link): Promise<Channel> {
    if (link.admin !== undefined) return link.admin;
    const channel = await link.model.createChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (link.admin === channel) link.admin = undefined;
    });
    link.admin = channel;
    return channel;
  }

  async #publisherChannel(link: Link): Promise<ConfirmChannel> {
    if (link.publisher !== undefined) return link.publisher;
    const channel = await link.model.createConfirmChannel();
    channel.on('error', () => {});
    channel.on('close', () => {
      if (link.publisher === channel) link.publisher = undefined;
    });
    channel.on('return', (message: Message) => {
      const id = message.properties.messageId;
      if (typeof id === 'string' && id !== '') link.returned.add(id);
    });
    link.publisher = channel;
    return channel;
  }

  async #declareExchange(link: Link, topic: string): Promise<string> {
    const exchange = exchangeName(this.#options.prefix, topic);
    if (link.exchanges.has(exchange)) return exchange;
    const admin = await this.#adminChannel(link);
    await admin.assertExchange(exchange, 'topic', { durable: true });
    link.exchanges.add(exchange);
    return exchange;
  }

  async #declareQueue(link: Link, group: GroupTopology): Promise<void> {
    const exchange = await this.#declareExchange(link, group.topic);
    const admin = await this.#adminChannel(link);
    await admin.assertQueue(group.queue, { durable: true, arguments: { 'x-queue-type': this.#options.queueType } });
    await admin.bindQueue(group.queue, exchange, group.topic);
  }

  /** The live link, waiting for a reconnect until `deadline`. */
  async #liveLink(deadline: number, what: string): Promise<Link> {
    for (;;) {
      if (this.#closing !== undefined) throw closedError(what);
      const link = this.#link;
      if (link !== undefined) return link;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `${what}: not connected to RabbitMQ` });
      await Promise.race([new Promise<void>((resolve) => this.#waiters.push(resolve)), idle(Math.min(remaining, 250))]);
    }
  }

  async publish(message: OutgoingMessage): Promise<void> {
    if (this.#closing !== undefined) throw closedError('publish');
    assertTopic(message.topic);
    assertMessageSize(message.body.byteLength, this.capabilities.maxMessageBytes);
    this.#topics.add(message.topic);
    const content = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
    const properties = toAmqpProperties(message);
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const link = await this.#liveLink(deadline, `publish to ${message.topic}`);
        const exchange = await this.#declareExchange(link, message.topic);
        // A message no group queue is bound to is returned and dropped: nobody declared interest.
        await this.#confirm(link, exchange, message.topic, content, properties);
        return;
      } catch (error) {
        if (this.#closing !== undefined) throw closedError('publish');
        if (error instanceof SwitchboardError || isTooLarge(error) || Date.now() >= deadline) {
          throw toBrokerError(error, `publish to ${message.topic}`);
        }
        await idle(Math.min(500, 20 * 2 ** attempt, Math.max(0, deadline - Date.now())));
      }
    }
  }

  /** Publishes on the confirm channel; resolves `true` when the server confirmed and did not return it. */
  async #confirm(link: Link, exchange: string, routingKey: string, content: Buffer, properties: Options.Publish): Promise<boolean> {
    const channel = await this.#publisherChannel(link);
    return new Promise<boolean>((resolve, reject) => {
      try {
        channel.publish(exchange, routingKey, content, properties, (error: unknown) => {
          const id = properties.messageId;
          const returned = id !== undefined && id !== '' && link.returned.delete(id);
          if (error) reject(error instanceof Error ? error : new Error(String(error)));
          else resolve(!returned);
        });
      } catch (error) {
        reject(error);
      }
    });
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
    await Promise.all(Array.from({ length: Math.min(messages.length, this.#options.publishConcurrency) }, worker));
    if (failure !== undefined) throw failure;
  }

  /**
   * The message count of the group's queue (`queue.declare` passive): messages ready for delivery.
   * RabbitMQ leaves out those delivered and not acknowledged yet, and those parked in a delay queue
   * after `nack(delayMs)`. Asked on a channel of its own, since a missing queue closes the channel.
   */
  async pending(topic: string, group: string): Promise<number | undefined> {
    if (this.#closing !== undefined) return undefined;
    assertTopic(topic);
    assertGroup(group);
    const queue = groupQueueName(this.#options.prefix, topic, group);
    const link = await this.#liveLink(Date.now() + this.#options.publishTimeoutMs, 'pending');
    let channel: Channel;
    try {
      channel = await link.model.createChannel();
    } catch (error) {
      throw toBrokerError(error, `check queue ${queue}`);
    }
    channel.on('error', () => {});
    try {
      const { messageCount } = await channel.checkQueue(queue);
      return messageCount;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw toBrokerError(error, `check queue ${queue}`);
    } finally {
      await channel.close().catch(() => {});
    }
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    await this.#declareGroup(topic, group, 'declareGroup');
  }

  async #declareGroup(topic: string, group: string, what: string): Promise<GroupTopology> {
    if (this.#closing !== undefined) throw closedError(what);
    assertTopic(topic);
    assertGroup(group);
    const topology: GroupTopology = { topic, queue: groupQueueName(this.#options.prefix, topic, group) };
    this.#topics.add(topic);
    this.#groups.set(topology.queue, topology);
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const link = await this.#liveLink(deadline, what);
      try {
        await this.#declareQueue(link, topology);
        return topology;
      } catch (error) {
        if (Date.now() >= deadline) throw toBrokerError(error, `declare queue ${topology.queue}`);
        await idle(Math.min(500, 20 * 2 ** attempt));
      }
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    if (this.#closing !== undefined) throw closedError('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options, { maxInFlight: MAX_PREFETCH });
    const topology = await this.#declareGroup(options.topic, options.group, 'subscribe');
    const subscription = new RabbitMqSubscription({
      topic: options.topic,
      group: options.group,
      queue: topology.queue,
      handler,
      maxInFlight,
      ackTimeoutMs,
      drainTimeoutMs: this.#options.drainTimeoutMs,
      delay: (message, attempt, delayMs) => this.#delay(topology.queue, message, attempt, delayMs),
      redeclare: async () => {
        const link = this.#link;
        if (link !== undefined) await this.#declareQueue(link, topology);
      },
      currentModel: () => this.#link?.model,
      onClosed: (closed) => this.#subscriptions.delete(closed),
    });
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const link = await this.#liveLink(deadline, 'subscribe');
      try {
        await subscription.attach(link.model);
        break;
      } catch (error) {
        if (Date.now() >= deadline) throw toBrokerError(error, `consume from ${topology.queue}`);
        await idle(Math.min(500, 20 * 2 ** attempt));
      }
    }
    this.#subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Parks a copy of the message in the group's delay queue for the bucket at or above `delayMs`;
   * when its TTL runs out the server dead-letters it back into the group queue. Resolves once the
   * copy is confirmed, so the caller can ack the original.
   */
  async #delay(groupQueue: string, message: ConsumeMessage, attempt: number, delayMs: number): Promise<void> {
    const link = this.#link;
    if (link === undefined) throw new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: 'not connected' });
    const bucket = delayBucket(delayMs);
    const queue = delayQueueName(groupQueue, bucket);
    const declaredAt = link.delayQueues.get(queue);
    if (declaredAt === undefined || Date.now() - declaredAt > DELAY_QUEUE_REDECLARE_MS) {
      const admin = await this.#adminChannel(link);
      await admin.assertQueue(queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'classic',
          'x-message-ttl': bucket,
          'x-expires': bucket + DELAY_QUEUE_IDLE_MS,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': groupQueue,
        },
      });
      link.delayQueues.set(queue, Date.now());
    }
    const { properties } = message;
    const headers = { ...(properties.headers as Record<string, unknown> | undefined) };
    for (const name of SERVER_HEADERS) delete headers[name];
    headers[ATTEMPT_HEADER] = String(attempt);
    const routed = await this.#confirm(link, '', queue, message.content, copyProperties(properties, headers));
    if (!routed) throw new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `delay queue ${queue} is missing` });
  }

  async #request(message: OutgoingMessage, options: RequestOptions): Promise<ReplyMessage> {
    checkRequestTimeout(options.timeoutMs);
    if (this.#closing !== undefined || this.#requestsClosed) throw closedError('request');
    assertTopic(message.topic);
    assertMessageSize(message.body.byteLength, this.capabilities.maxMessageBytes);
    const topic = requestTopic(message.topic);
    this.#topics.add(topic);
    const started = Date.now();
    const link = await this.#liveLink(started + Math.min(options.timeoutMs, this.#options.publishTimeoutMs), `request to ${message.topic}`);
    const exchange = await this.#declareExchange(link, topic);
    const channel = await this.#replyChannelOf(link);
    const remaining = Math.max(1, Math.round(options.timeoutMs - (Date.now() - started)));
    const token = `r${(this.#nextRequest++).toString(36)}`;
    const properties = toAmqpProperties(message);
    properties.headers = { ...properties.headers, [REQUEST_HEADERS.deadline]: String(started + options.timeoutMs) };
    properties.replyTo = DIRECT_REPLY_TO;
    properties.correlationId = token;
    properties.persistent = false;
    // Nobody waits once the timeout passed: the server drops an unanswered request then.
    properties.expiration = String(remaining);
    const content = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength);
    return this.#replies.wait(token, message.topic, { ...options, timeoutMs: remaining }, () => {
      channel.publish(exchange, topic, content, properties);
      return undefined;
    });
  }

  /** The channel that consumes direct replies (and publishes the requests: RabbitMQ wants both on one channel), per connection. */
  #replyChannelOf(link: Link): Promise<Channel> {
    if (this.#replyChannel?.link === link) return this.#replyChannel.ready;
    const ready = (async () => {
      const channel = await link.model.createChannel();
      channel.on('error', () => {});
      channel.on('close', () => {
        if (this.#replyChannel?.link === link) this.#replyChannel = undefined;
      });
      channel.on('return', (returned: Message) => {
        const id = returned.properties.correlationId;
        if (typeof id === 'string') {
          this.#replies.reject(id, new SwitchboardError('SB_NO_RESPONDERS', { detail: 'no queue serves this operation on RabbitMQ' }));
        }
      });
      await channel.consume(
        DIRECT_REPLY_TO,
        (reply) => {
          if (reply === null) return;
          const id = reply.properties.correlationId;
          if (typeof id !== 'string') return;
          const content = reply.content;
          this.#replies.resolve(id, {
            headers: fromAmqpProperties(reply.properties).headers,
            body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
          });
        },
        { noAck: true },
      );
      return channel;
    })();
    this.#replyChannel = { link, ready };
    ready.catch(() => {
      if (this.#replyChannel?.ready === ready) this.#replyChannel = undefined;
    });
    return ready;
  }

  async #serveRequests(options: SubscribeOptions, handler: RequestHandler): Promise<Subscription> {
    const subscription = await this.subscribe({ ...options, topic: requestTopic(options.topic) }, async (delivery) => {
      const address = delivery instanceof RabbitMqDelivery ? delivery.replyAddress : undefined;
      try {
        if (address !== undefined) await handler(new DirectRequest(delivery as RabbitMqDelivery, options.topic, address, this.#replyTo));
      } finally {
        await delivery.ack();
      }
    });
    return { topic: options.topic, group: options.group, close: () => subscription.close() };
  }

  /** Publishes a reply to a direct reply-to address (the default exchange; not confirmed: nothing keeps it anyway). */
  readonly #replyTo = async (replyTo: string, correlationId: string, reply: ReplyMessage): Promise<void> => {
    const link = this.#link;
    if (link === undefined) throw new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: 'reply: not connected to RabbitMQ' });
    assertMessageSize(reply.body.byteLength, this.capabilities.maxMessageBytes);
    const properties = toAmqpProperties({ id: '', topic: '', headers: reply.headers, body: reply.body });
    properties.correlationId = correlationId;
    properties.persistent = false;
    properties.mandatory = false;
    const channel = await this.#adminChannel(link);
    channel.publish('', replyTo, Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength), properties);
  };

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#requestsClosed = true;
    this.#replies.failAll(closedError('request'));
    for (const wake of this.#waiters.splice(0)) wake();
    await Promise.allSettled([...this.#subscriptions].map((subscription) => subscription.close()));
    const link = this.#link;
    if (link?.publisher !== undefined) await link.publisher.waitForConfirms().catch(() => {});
    await this.#connection?.close().catch(() => {});
    this.#link = undefined;
  }
}

/** A request taken from a group queue, answered on its direct reply-to address. */
class DirectRequest implements RequestDelivery {
  readonly id: string;
  readonly topic: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
  readonly key?: string;
  readonly attempt: number;
  readonly deadline: number | undefined;
  readonly #delivery: RabbitMqDelivery;
  readonly #address: { readonly replyTo: string; readonly correlationId: string };
  readonly #send: (replyTo: string, correlationId: string, reply: ReplyMessage) => Promise<void>;

  constructor(
    delivery: RabbitMqDelivery,
    topic: string,
    address: { readonly replyTo: string; readonly correlationId: string },
    send: (replyTo: string, correlationId: string, reply: ReplyMessage) => Promise<void>,
  ) {
    this.#delivery = delivery;
    this.#address = address;
    this.#send = send;
    this.id = delivery.id;
    this.topic = topic;
    const { [REQUEST_HEADERS.deadline]: _deadline, ...headers } = delivery.headers;
    this.headers = headers;
    this.body = delivery.body;
    if (delivery.key !== undefined) this.key = delivery.key;
    this.attempt = delivery.attempt;
    this.deadline = readDeadline(delivery.headers);
  }

  ack(): Promise<void> {
    return this.#delivery.ack();
  }

  nack(delayMs?: number): Promise<void> {
    return this.#delivery.nack(delayMs);
  }

  reply(reply: ReplyMessage): Promise<void> {
    return this.#send(this.#address.replyTo, this.#address.correlationId, reply);
  }
}
