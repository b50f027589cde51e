import { randomBytes } from 'node:crypto';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import { assertMessageSize, brokerErrors, resolveSubscribeOptions } from '@switchboard/core/kit';
import type { IClientPublishOptions, IConnackPacket, MqttClient } from 'mqtt';
import { connect } from 'mqtt';
import { propertiesBytes, toMqttProperties } from './binding.js';
import { MqttDelivery } from './delivery.js';
import { type MqttBrokerOptions, positiveInteger } from './options.js';
import { MqttSubscription } from './subscription.js';

/** The largest packet MQTT can frame (the Remaining Length field's maximum). */
export const MQTT_MAX_PACKET_BYTES = 268_435_455;
/** Kept for the topic, the user properties and the packet's own fields (a quarter of a smaller maximum packet size). */
const HEADER_ALLOWANCE = 64 * 1024;
const NUL = String.fromCharCode(0);

/** MQTT 5 reason code 0x95: the packet was too large for the server. */
const { toBrokerError, closedError } = brokerErrors({
  engine: 'MQTT',
  tooLarge: (error) => (error as { code?: unknown } | null)?.code === 0x95,
});

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
    this.#prefix = options.prefix ?? 'sb';
    if (/[+#]/.test(this.#prefix) || this.#prefix.includes(NUL) || this.#prefix.startsWith('$')) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `prefix ${JSON.stringify(this.#prefix)} may not contain '+', '#' or NUL, nor start with '$'`,
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
    assertMessageSize(bytes, this.capabilities.maxMessageBytes);
    const topic = this.#topic(message.topic);
    const properties = toMqttProperties(message.id, message.headers, message.key);
    // Fixed header (at most 5), topic (2 + length), packet id (2), properties length (at most 4).
    const packetBytes = 13 + Buffer.byteLength(topic) + propertiesBytes(properties) + bytes;
    assertMessageSize(packetBytes, this.#maxPacketBytes, "the packet (body and headers, against the server's maximum packet size)");
    const body = Buffer.from(message.body.buffer, message.body.byteOffset, bytes);
    return { topic, body, options: { qos: 1, properties } };
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
      subscription.push(new MqttDelivery(topic, payload, packet.properties));
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
          detail: `topic ${JSON.stringify(topic)} may not start with '$' without a prefix`,
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
