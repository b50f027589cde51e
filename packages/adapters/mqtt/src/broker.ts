import { randomBytes } from 'node:crypto';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { AtMostOnceDelivery, describeError, resolveSubscribeOptions } from '@switchboard/core/kit';
import type { IClientOptions, IClientPublishOptions, IConnackPacket, MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import {
  fromUserProperties,
  type IncomingUserProperties,
  type ReceivedProperties,
  toUserProperties,
  userPropertiesBytes,
} from './properties.js';
import { type DroppedDelivery, MqttSubscription } from './subscription.js';

export interface MqttBrokerOptions {
  /** Server URL, `mqtt://host:1883` or `mqtts://host:8883`. Default `mqtt://127.0.0.1:1883`. */
  readonly url?: string;
  /**
   * Extra mqtt.js options for every connection the broker opens (credentials, TLS, keepalive, ...).
   * The protocol version (5), the clean start and the client id are the broker's own.
   */
  readonly clientOptions?: Omit<IClientOptions, 'protocolVersion' | 'clean' | 'clientId'>;
  /** MQTT topics are `<topicPrefix>/<topic>`. Default `sb`. */
  readonly topicPrefix?: string;
  /** Largest body accepted, in bytes. Default: the server's maximum packet size minus 64 KiB kept for topic and properties. */
  readonly maxMessageBytes?: number;
  /** Deliveries waiting for a free `maxInFlight` slot, per subscription, before new ones are dropped. Default 100 000. */
  readonly maxPending?: number;
  /** How long closing waits for running and queued handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /**
   * How long a publish waits for its PUBACK (across reconnects) before `SB_BROKER_UNAVAILABLE`.
   * Default 15 000 ms.
   */
  readonly publishTimeoutMs?: number;
  /** How long the first connection of the broker or of a subscription may take. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Told about every delivery dropped on this side (overflow, failed handler, close). */
  readonly onDrop?: (drop: DroppedDelivery) => void;
  /** Receives errors of connections after they were opened (they reconnect by themselves, nothing is thrown). */
  readonly onError?: (error: SwitchboardError) => void;
}

/** The largest packet MQTT can frame (the Remaining Length field's maximum). */
export const MQTT_MAX_PACKET_BYTES = 268_435_455;
/** Kept for the topic, the user properties and the packet's own fields (a quarter of a smaller maximum packet size). */
const HEADER_ALLOWANCE = 64 * 1024;
/** MQTT 5 reason codes that mean the packet was too large for the server. */
const NUL = String.fromCharCode(0);
const TOO_LARGE_CODES = new Set([0x95]);

function toBrokerError(error: unknown, action: string): SwitchboardError {
  if (isSwitchboardError(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number' && TOO_LARGE_CODES.has(code)) {
    return new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${action}: ${describeError(error)}`, cause: error });
  }
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `MQTT could not ${action}: ${describeError(error)}`, cause: error });
}

function checkTopic(topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0 || /[+#]/.test(topic) || topic.includes(NUL)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `topic ${JSON.stringify(topic)} is not a valid MQTT topic name (non-empty, no '+', '#' or NUL)`,
    });
  }
}

function checkGroup(group: string): void {
  if (typeof group !== 'string' || group.length === 0 || /[/+#\s]/.test(group) || group.includes(NUL)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `group ${JSON.stringify(group)} is not a valid MQTT share name (non-empty, no '/', '+', '#' or spaces)`,
    });
  }
}

function positiveInteger(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be a positive integer, got ${value}` });
  }
  return value;
}

function clientId(): string {
  return `sb-${randomBytes(9).toString('base64url')}`;
}

/**
 * Opens one MQTT 5 connection with a clean start and a session that ends with the connection:
 * nothing is kept for this client while it is away. Rejects if the first attempt fails; after that
 * the client reconnects by itself (and subscribes again).
 */
function open(url: string, options: MqttBrokerOptions, role: string): Promise<{ client: MqttClient; limits: ServerLimits }> {
  const connectTimeout = positiveInteger(options.connectTimeoutMs, 'connectTimeoutMs', 10_000);
  return new Promise((resolve, reject) => {
    const extra = options.clientOptions ?? {};
    const client = connect(url, {
      reconnectPeriod: 250,
      connectTimeout,
      ...extra,
      protocolVersion: 5,
      clean: true,
      clientId: clientId(),
      // Without a Receive Maximum, Mosquitto keeps only `max_inflight_messages` (20) unacknowledged
      // messages on the way to this client and queues `max_queued_messages` (1000) more, then drops:
      // a burst overflows that quickly. The client acknowledges on arrival, so the largest window is safe.
      properties: { receiveMaximum: 65_535, ...extra.properties, sessionExpiryInterval: 0 },
    });
    let limits: ServerLimits = {};
    const settle = (error?: unknown) => {
      client.off('connect', onConnect);
      client.off('error', onFailure);
      client.off('close', onClose);
      // From here on errors are reported, never thrown: the client reconnects by itself.
      client.on('error', (later: unknown) => report(options, later, role));
      if (error === undefined) {
        resolve({ client, limits });
        return;
      }
      client.end(true);
      reject(toBrokerError(error, `connect to ${redact(url)}`));
    };
    const onConnect = (connack: IConnackPacket) => {
      limits = connack.properties ?? {};
      settle();
    };
    const onFailure = (error: unknown) => settle(error);
    const onClose = () => settle(new Error('the connection closed before the server accepted it'));
    client.on('connect', onConnect);
    client.on('error', onFailure);
    client.on('close', onClose);
  });
}

function report(options: MqttBrokerOptions, error: unknown, action: string): void {
  try {
    options.onError?.(toBrokerError(error, action));
  } catch {
    // A failing observer must not break the connection.
  }
}

/** What the server announced in its CONNACK that the broker uses. */
export interface ServerLimits {
  readonly maximumPacketSize?: number;
  readonly sharedSubscriptionAvailable?: boolean;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

/**
 * Connects to an MQTT 5 server (Mosquitto 2 or any server with shared subscriptions) and returns an
 * at-most-once broker: QoS 1 publishes (`publish` resolves on the server's PUBACK), groups are
 * shared subscriptions `$share/<group>/<prefix>/<topic>`, sessions end with their connection.
 * See `docs/adapters/mqtt.md`.
 */
export async function createMqttBroker(options: MqttBrokerOptions = {}): Promise<MqttBroker> {
  const url = options.url ?? 'mqtt://127.0.0.1:1883';
  const { client, limits } = await open(url, options, 'keep the publishing connection');
  try {
    return new MqttBroker(client, url, options, limits);
  } catch (error) {
    client.end(true);
    throw error;
  }
}

/** An MQTT delivery: its user properties are decoded on first use. */
class MqttDelivery extends AtMostOnceDelivery {
  readonly #source: IncomingUserProperties;

  constructor(topic: string, body: Uint8Array, source: IncomingUserProperties) {
    super(topic, body);
    this.#source = source;
  }

  protected readFields(): ReceivedProperties {
    return fromUserProperties(this.#source);
  }
}

type PublishCallback = (error?: Error | null) => void;

interface PendingPublish {
  written: boolean;
  readonly fail: () => void;
}

interface PreparedPublish {
  readonly topic: string;
  readonly body: Buffer;
  readonly options: IClientPublishOptions;
}

/**
 * MQTT 5 as an at-most-once broker. Publishes are QoS 1: `publish` resolves on the PUBACK, i.e.
 * once the server has taken the message and routed it to the subscriptions it had. Every
 * subscription has its own connection and subscribes `$share/<group>/<prefix>/<topic>` at QoS 1;
 * the client acknowledges each message as it arrives, before the handler runs, and the session
 * ends with the connection, so nothing is ever redelivered and nothing is kept for a group.
 */
export class MqttBroker implements Broker {
  readonly name = 'mqtt';
  readonly binding: CloudEventsBinding = cloudEventsBindings.mqtt;
  readonly capabilities: BrokerCapabilities;
  /** The publishing connection (for events and diagnostics). */
  readonly client: MqttClient;
  readonly #url: string;
  readonly #options: MqttBrokerOptions;
  readonly #prefix: string;
  readonly #maxPacketBytes: number;
  readonly #maxPending: number;
  readonly #drainTimeoutMs: number;
  readonly #publishTimeoutMs: number;
  readonly #sharedSubscriptions: boolean;
  readonly #subscriptions = new Set<MqttSubscription>();
  readonly #topics = new Map<string, string>();
  /** Publishes waiting for their PUBACK; `written` once they went out on a connection. */
  readonly #pending = new Map<PublishCallback, PendingPublish>();
  #closing: Promise<void> | undefined;

  constructor(client: MqttClient, url: string, options: MqttBrokerOptions, connack: ServerLimits = {}) {
    this.client = client;
    this.#url = url;
    this.#options = options;
    this.#prefix = options.topicPrefix ?? 'sb';
    if (/[+#]/.test(this.#prefix) || this.#prefix.includes(NUL) || this.#prefix.startsWith('$')) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `topicPrefix ${JSON.stringify(this.#prefix)} may not contain '+', '#' or NUL, nor start with '$'`,
      });
    }
    this.#maxPending = positiveInteger(options.maxPending, 'maxPending', 100_000);
    this.#drainTimeoutMs = positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000);
    this.#publishTimeoutMs = positiveInteger(options.publishTimeoutMs, 'publishTimeoutMs', 15_000);
    const properties = connack;
    this.#maxPacketBytes = Math.min(properties?.maximumPacketSize ?? MQTT_MAX_PACKET_BYTES, MQTT_MAX_PACKET_BYTES);
    this.#sharedSubscriptions = properties?.sharedSubscriptionAvailable !== false;
    const serverLimit = this.#maxPacketBytes - Math.min(HEADER_ALLOWANCE, Math.floor(this.#maxPacketBytes / 4));
    const maxMessageBytes = Math.min(positiveInteger(options.maxMessageBytes, 'maxMessageBytes', serverLimit), serverLimit);
    if (maxMessageBytes <= 0) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `the server's maximum packet size (${this.#maxPacketBytes}) is too small`,
      });
    }
    client.on('close', () => this.#onConnectionClosed());
    // On reconnect the client sends what it queued while disconnected: from then on it is written.
    client.on('connect', () => {
      for (const pending of this.#pending.values()) pending.written = true;
    });
    this.capabilities = {
      delivery: 'at-most-once',
      persistent: false,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: false,
      publishDeduplication: false,
      maxMessageBytes,
    };
  }

  async publish(message: OutgoingMessage): Promise<void> {
    this.#assertOpen('publish');
    const prepared = this.#prepare(message);
    await this.#send(prepared, message.topic);
  }

  /** Every message is checked before any is sent; then they are pipelined on the one connection. */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen('publish');
    if (messages.length === 0) return;
    const prepared = messages.map((message) => this.#prepare(message));
    await Promise.all(prepared.map((entry, i) => this.#send(entry, messages[i]!.topic)));
  }

  /**
   * Resolves on the PUBACK. The message is never sent twice (that would give a group a duplicate):
   * - if the connection drops after the message was written and before its PUBACK, the publish
   *   rejects with `SB_BROKER_UNAVAILABLE` (the server may or may not have taken it) and the message
   *   is withdrawn from the client's queue instead of being sent again after the reconnect;
   * - a publish made while disconnected waits for the reconnect, up to `publishTimeoutMs`, then is
   *   withdrawn and rejects the same way.
   */
  #send(prepared: PreparedPublish, topic: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (error?: SwitchboardError) => {
        if (!this.#pending.delete(done)) return;
        clearTimeout(timer);
        if (error === undefined) resolve();
        else reject(error);
      };
      const done: PublishCallback = (error) => finish(error == null ? undefined : toBrokerError(error, `publish to ${topic}`));
      const timer = setTimeout(() => {
        finish(
          new SwitchboardError('SB_BROKER_UNAVAILABLE', {
            detail: `MQTT could not publish to ${topic}: no PUBACK within ${this.#publishTimeoutMs} ms; the message is not sent later`,
          }),
        );
        this.#withdraw((cb) => cb === done);
      }, this.#publishTimeoutMs);
      timer.unref();
      this.#pending.set(done, {
        written: this.client.connected,
        fail: () =>
          finish(
            new SwitchboardError('SB_BROKER_UNAVAILABLE', {
              detail: `the connection to the MQTT server was lost before the PUBACK of a message to ${topic}: the server may or may not have taken it; it is not sent again`,
            }),
          ),
      });
      this.client.publish(prepared.topic, prepared.body, prepared.options, done);
    });
  }

  /** The connection dropped: publishes already written fail and leave the client's resend queue. */
  #onConnectionClosed(): void {
    if (this.#pending.size === 0) return;
    this.#withdraw((cb) => {
      const pending = this.#pending.get(cb);
      if (pending?.written !== true) return false;
      // Rejected with its own reason first: the withdrawal then calls back with a bare "removed".
      pending.fail();
      return true;
    });
  }

  /** Removes the client's unacknowledged publishes whose callback matches from its queue and store. */
  #withdraw(matches: (cb: PublishCallback) => boolean): void {
    const outgoing = (this.client as unknown as { outgoing: Record<string, { cmd?: string; cb?: PublishCallback }> }).outgoing;
    for (const id in outgoing) {
      const entry = outgoing[id];
      if (entry?.cmd === 'publish' && entry.cb !== undefined && matches(entry.cb)) this.client.removeOutgoingMessage(Number(id));
    }
  }

  #prepare(message: OutgoingMessage): PreparedPublish {
    const bytes = message.body.byteLength;
    const limit = this.capabilities.maxMessageBytes;
    if (bytes > limit) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${bytes} bytes is over the MQTT limit of ${limit} bytes` });
    }
    const topic = this.#topic(message.topic);
    const userProperties = toUserProperties(message.id, message.headers, message.key);
    // Fixed header (at most 5), topic (2 + length), packet id (2), properties length (at most 4).
    const packetBytes = 13 + Buffer.byteLength(topic) + userPropertiesBytes(userProperties) + bytes;
    if (packetBytes > this.#maxPacketBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `the packet would be ${packetBytes} bytes (body and headers), over the server's maximum of ${this.#maxPacketBytes}`,
      });
    }
    const body = Buffer.from(message.body.buffer, message.body.byteOffset, bytes);
    return { topic, body, options: { qos: 1, properties: { userProperties } } };
  }

  /** Nothing to declare: a shared subscription exists while one of its members is connected. */
  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen('declareGroup');
    this.#topic(topic);
    checkGroup(group);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen('subscribe');
    // ackTimeoutMs is checked for the contract, unused: nothing is ever redelivered.
    const { maxInFlight } = resolveSubscribeOptions(options);
    const { topic, group } = options;
    const mqttTopic = this.#topic(topic);
    checkGroup(group);
    if (!this.#sharedSubscriptions) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the MQTT server does not offer shared subscriptions, which groups need' });
    }
    const filter = `$share/${group}/${mqttTopic}`;
    const { client } = await open(this.#url, this.#options, `keep the subscription to ${topic} (${group}) connected`);
    const subscription = new MqttSubscription({
      client,
      topic,
      group,
      handler,
      maxInFlight,
      maxPending: this.#maxPending,
      drainTimeoutMs: this.#drainTimeoutMs,
      onDrop: this.#options.onDrop,
      stop: async () => {
        await client.unsubscribeAsync(filter).catch(() => {});
        await client.endAsync().catch(() => client.end(true));
      },
      onClosed: (closed) => this.#subscriptions.delete(closed as MqttSubscription),
    });
    client.on('message', (_topic, payload, packet) => {
      subscription.push(new MqttDelivery(topic, payload, packet.properties?.userProperties));
    });
    try {
      const granted = await client.subscribeAsync(filter, { qos: 1 });
      const refused = granted.find((grant) => grant.qos > 2);
      if (refused !== undefined)
        throw Object.assign(new Error(`the server refused the subscription (reason ${refused.qos})`), { code: refused.qos });
    } catch (error) {
      client.end(true);
      throw toBrokerError(error, `subscribe to ${topic}`);
    }
    // A close that began while subscribing would miss this subscription.
    if (this.#closing !== undefined) {
      await subscription.close();
      throw closedError('subscribe');
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
    await this.client.endAsync().catch(() => this.client.end(true));
  }

  #topic(topic: string): string {
    let mqttTopic = this.#topics.get(topic);
    if (mqttTopic === undefined) {
      checkTopic(topic);
      if (this.#prefix === '' && topic.startsWith('$')) {
        throw new SwitchboardError('SB_CONFIG_INVALID', {
          detail: `topic ${JSON.stringify(topic)} may not start with '$' without a topicPrefix`,
        });
      }
      mqttTopic = this.#prefix === '' ? topic : `${this.#prefix}/${topic}`;
      if (Buffer.byteLength(mqttTopic) > 0xffff) {
        throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'an MQTT topic name holds at most 65535 bytes' });
      }
      if (this.#topics.size < 10_000) this.#topics.set(topic, mqttTopic);
    }
    return mqttTopic;
  }

  #assertOpen(what: string): void {
    if (this.#closing !== undefined) throw closedError(what);
  }
}

function closedError(what: string): SwitchboardError {
  return new SwitchboardError('SB_CLOSED', { detail: `the MQTT broker is closed (${what})` });
}
