import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError } from '@switchboard/core';
import { describeError } from '@switchboard/core/kit';
import type { RedisOptions } from 'ioredis';
import { Redis } from 'ioredis';
import { encodeFields } from './broker-codec.js';
import { RedisStreamSubscription } from './broker-subscription.js';

export interface RedisStreamsBrokerOptions {
  /** Connection URL, e.g. `redis://127.0.0.1:6379`. Ignored when `client` is given. Default `redis://127.0.0.1:6379`. */
  readonly url?: string;
  /** Extra ioredis options for the connections the broker opens itself. */
  readonly redisOptions?: RedisOptions;
  /**
   * An existing connection to use for commands. The broker duplicates it for its blocking reads and
   * does not close it on `close()`: its owner does.
   */
  readonly client?: Redis;
  /** Prefix of every key the broker writes. Default `sb:`. */
  readonly prefix?: string;
  /**
   * Retention by length: each XADD trims the stream to about this many entries (`MAXLEN ~`).
   * Entries are trimmed whether or not every group has read or acknowledged them. Default: no trimming.
   */
  readonly maxLen?: number;
  /** Retention by age: each XADD trims entries older than this (`MINID ~`). Same caveat as `maxLen`. */
  readonly maxAgeMs?: number;
  /** Largest body accepted by `publish`, in bytes. Default 1 MiB, at most 512 MiB (the Redis limit). */
  readonly maxMessageBytes?: number;
  /**
   * Declare the broker persistent. Only true when the server runs `appendonly yes` with
   * `appendfsync always` and `maxmemory-policy noeviction`; the broker checks those settings
   * (`CONFIG GET`) before its first command and refuses to work with SB_CONFIG_INVALID when they
   * differ. Default false.
   */
  readonly persistent?: boolean;
  /** Longest a consumer waits in one blocking read, and the period of its delayed/reclaim checks. Default 200 ms. */
  readonly pollIntervalMs?: number;
  /** How often a consumer looks for deliveries left unsettled past `ackTimeoutMs`. Default `ackTimeoutMs / 2`, at most 5 000 ms. */
  readonly claimIntervalMs?: number;
  /** How long `close()` waits for running handlers. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Receives errors of the background loops (reads, reclaims); they are retried, never thrown. */
  readonly onError?: (error: SwitchboardError) => void;
}

const MIB = 1024 * 1024;
const REDIS_MAX_BULK = 512 * MIB;
const NAME = /^[^\s{}]{1,200}$/;

function positiveInteger(value: number | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be an integer between 1 and ${max}, got ${value}` });
  }
  return value;
}

function checkName(kind: string, value: string): void {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `${kind} "${value}" must be 1 to 200 characters without spaces or braces`,
    });
  }
}

/** Maps an ioredis failure (connection lost, retries exhausted, error reply) to SB_BROKER_UNAVAILABLE. */
function toBrokerError(error: unknown, action: string): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `Redis could not ${action}: ${describeError(error)}`, cause: error });
}

/**
 * A broker on Redis Streams: one stream per topic, one consumer group per Switchboard group, the
 * pending-entries list (PEL) for unsettled deliveries and their attempt counts, and a sorted set per
 * group for nacks with a delay. See `docs/adapters/redis.md`.
 */
export class RedisStreamsBroker implements Broker {
  readonly name = 'redis-streams';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #commands: Redis;
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #trim: readonly (string | number)[];
  readonly #options: RedisStreamsBrokerOptions;
  readonly #pollIntervalMs: number;
  readonly #drainTimeoutMs: number;
  readonly #subscriptions = new Set<RedisStreamSubscription>();
  #verified: Promise<void> | undefined;
  #ready = false;
  #closed: Promise<void> | undefined;

  constructor(options: RedisStreamsBrokerOptions = {}) {
    const maxMessageBytes = positiveInteger(options.maxMessageBytes, 'maxMessageBytes', MIB, REDIS_MAX_BULK);
    this.#pollIntervalMs = positiveInteger(options.pollIntervalMs, 'pollIntervalMs', 200);
    this.#drainTimeoutMs = positiveInteger(options.drainTimeoutMs, 'drainTimeoutMs', 10_000);
    if (options.claimIntervalMs !== undefined) positiveInteger(options.claimIntervalMs, 'claimIntervalMs', 1);
    if (options.maxLen !== undefined && options.maxAgeMs !== undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'maxLen and maxAgeMs cannot both be set: XADD trims by one strategy' });
    }
    const maxLen = options.maxLen === undefined ? undefined : positiveInteger(options.maxLen, 'maxLen', 1);
    const maxAgeMs = options.maxAgeMs === undefined ? undefined : positiveInteger(options.maxAgeMs, 'maxAgeMs', 1);
    this.#trim = maxLen === undefined ? [] : ['MAXLEN', '~', maxLen];
    if (maxAgeMs !== undefined) this.#trim = ['MINID', '~'];
    this.#options = options;
    this.#prefix = options.prefix ?? 'sb:';
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: options.persistent === true,
      multiProcess: true,
      ordering: 'per-topic',
      delayedRedelivery: true,
      publishDeduplication: false,
      maxMessageBytes,
    };
    if (options.client) {
      this.#commands = options.client;
      this.#ownsClient = false;
    } else {
      this.#commands = new Redis(options.url ?? 'redis://127.0.0.1:6379', options.redisOptions ?? {});
      this.#ownsClient = true;
      this.#commands.on('error', (error: unknown) => this.#report(error, 'stay connected'));
    }
  }

  streamKey(topic: string): string {
    return `${this.#prefix}{${topic}}`;
  }

  delayedKey(topic: string, group: string): string {
    return `${this.#prefix}{${topic}}:delayed:${group}`;
  }

  async publish(message: OutgoingMessage): Promise<void> {
    await this.publishBatch([message]);
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#assertOpen();
    for (const message of messages) this.#checkMessage(message);
    if (messages.length === 0) return;
    await this.#ensureReady();
    try {
      if (messages.length === 1) {
        await this.#commands.callBuffer('XADD', ...this.#xaddArgs(messages[0]!));
        return;
      }
      // A pipeline, not a transaction: one round trip per chunk; on failure a prefix may be published.
      for (let i = 0; i < messages.length; i += 1000) {
        const pipeline = this.#commands.pipeline();
        for (const message of messages.slice(i, i + 1000)) pipeline.callBuffer('XADD', ...this.#xaddArgs(message));
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([error]) => error !== null);
        if (failed) throw failed[0];
        if (results.length === 0) throw new Error('the pipeline was not executed');
      }
    } catch (error) {
      throw toBrokerError(error, 'confirm the publish');
    }
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#assertOpen();
    checkName('topic', topic);
    checkName('group', group);
    await this.#ensureReady();
    await this.#createGroup(topic, group, '$');
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#assertOpen();
    checkName('topic', options.topic);
    checkName('group', options.group);
    const maxInFlight = positiveInteger(options.maxInFlight, 'maxInFlight', 64);
    const ackTimeoutMs = positiveInteger(options.ackTimeoutMs, 'ackTimeoutMs', 30_000);
    await this.#ensureReady();
    const { topic, group } = options;
    await this.#createGroup(topic, group, '$');
    this.#assertOpen();
    const blocking = this.#commands.duplicate();
    blocking.on('error', (error: unknown) => this.#report(error, 'keep the blocking connection'));
    const subscription: RedisStreamSubscription = new RedisStreamSubscription(
      {
        topic,
        group,
        streamKey: this.streamKey(topic),
        delayedKey: this.delayedKey(topic, group),
        commands: this.#commands,
        blocking,
        maxInFlight,
        ackTimeoutMs,
        pollIntervalMs: this.#pollIntervalMs,
        claimIntervalMs: this.#options.claimIntervalMs ?? Math.min(5000, Math.max(1, Math.floor(ackTimeoutMs / 2))),
        drainTimeoutMs: this.#drainTimeoutMs,
        ensureGroup: (startId) => this.#createGroup(topic, group, startId),
        report: (error, action) => this.#report(error, action),
        toError: toBrokerError,
        onClosed: (closed) => this.#subscriptions.delete(closed),
      },
      handler,
    );
    this.#subscriptions.add(subscription);
    subscription.start();
    return subscription;
  }

  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()));
    if (!this.#ownsClient) return;
    try {
      await this.#commands.quit();
    } catch {
      this.#commands.disconnect();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'the Redis Streams broker was closed' });
  }

  #checkMessage(message: OutgoingMessage): void {
    checkName('topic', message.topic);
    if (message.body.byteLength > this.capabilities.maxMessageBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `message ${message.id} has ${message.body.byteLength} bytes; this broker takes at most ${this.capabilities.maxMessageBytes}`,
      });
    }
  }

  #xaddArgs(message: OutgoingMessage): (string | number | Buffer)[] {
    const trim = this.#options.maxAgeMs === undefined ? this.#trim : [...this.#trim, `${Date.now() - this.#options.maxAgeMs}-0`];
    return [this.streamKey(message.topic), ...trim, '*', ...encodeFields(message)];
  }

  async #createGroup(topic: string, group: string, startId: '$' | '0'): Promise<void> {
    try {
      await this.#commands.xgroup('CREATE', this.streamKey(topic), group, startId, 'MKSTREAM');
    } catch (error) {
      if (/BUSYGROUP/.test(describeError(error))) return;
      throw toBrokerError(error, `create consumer group ${group}`);
    }
  }

  #ensureReady(): Promise<void> | undefined {
    if (this.#ready) return undefined;
    this.#verified ??= this.#verify().then(
      () => {
        this.#ready = true;
      },
      (error: unknown) => {
        // A configuration mismatch stays; an unreachable server is asked again next time.
        if (!(error instanceof SwitchboardError && error.code === 'SB_CONFIG_INVALID')) this.#verified = undefined;
        throw error;
      },
    );
    return this.#verified;
  }

  /** With `persistent: true`, checks that the server really keeps acknowledged writes. */
  async #verify(): Promise<void> {
    if (!this.capabilities.persistent) return;
    let config: Map<string, string>;
    try {
      // A flat `[name, value, ...]` array (RESP2, or RESP3 with ioredis' legacy mapping) or an object.
      const reply = (await this.#commands.call('CONFIG', 'GET', '*')) as string[] | Record<string, string>;
      config = new Map(Array.isArray(reply) ? [] : Object.entries(reply));
      if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) config.set(reply[i]!, reply[i + 1]!);
    } catch (error) {
      // Managed services often disable CONFIG: the declaration is then taken on trust.
      if (/unknown command|NOPERM|disabled/i.test(describeError(error))) return;
      throw toBrokerError(error, 'read its configuration');
    }
    const expected: Record<string, string> = { appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'noeviction' };
    const wrong = Object.entries(expected).filter(([name, value]) => config.has(name) && config.get(name) !== value);
    if (wrong.length > 0) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `persistent: true needs ${wrong.map(([name, value]) => `${name} ${value} (server has ${config.get(name)})`).join(', ')}`,
      });
    }
  }

  #report(error: unknown, action: string): void {
    this.#options.onError?.(toBrokerError(error, action));
  }
}

/** Creates a Redis Streams broker. It connects lazily; the first command waits for the connection. */
export function createRedisStreamsBroker(options: RedisStreamsBrokerOptions = {}): RedisStreamsBroker {
  return new RedisStreamsBroker(options);
}
