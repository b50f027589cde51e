import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { BrokerLifecycle, describeError, queueCapabilities, resolveSubscribeOptions } from '@switchboard/core/kit';
import type { Redis } from 'ioredis';
import { CommandConnection } from './connection.js';
import { redisErrors } from './errors.js';
import { checkHeaderNames, encodeFields } from './layout.js';
import { checkName, type RedisStreamsBrokerOptions, type ResolvedStreamsOptions, resolveStreamsOptions } from './options.js';
import { RedisStreamSubscription } from './subscription.js';

export type { RedisBrokerOptions, RedisStreamsBrokerOptions } from './options.js';

/**
 * A broker on Redis Streams: one stream per topic, one consumer group per Switchboard group, the
 * pending-entries list (PEL) for unsettled deliveries and their attempt counts, and a sorted set per
 * group for nacks with a delay. Entries are in the plain layout (`docs/brokers.md`). See
 * `docs/adapters/redis.md`.
 */
export class RedisStreamsBroker implements Broker {
  readonly name = 'redis-streams';
  readonly binding: CloudEventsBinding = cloudEventsBindings.plain;
  readonly capabilities: BrokerCapabilities;
  readonly #commands: Redis;
  readonly #connection: CommandConnection;
  readonly #options: RedisStreamsBrokerOptions;
  readonly #resolved: ResolvedStreamsOptions;
  readonly #lifecycle = new BrokerLifecycle<RedisStreamSubscription>(redisErrors);
  #verified: Promise<void> | undefined;
  #ready = false;

  constructor(options: RedisStreamsBrokerOptions = {}) {
    this.#resolved = resolveStreamsOptions(options);
    this.#options = options;
    this.capabilities = queueCapabilities(this.#resolved.maxMessageBytes, { persistent: this.#resolved.persistent });
    this.#connection = new CommandConnection(options, this.#resolved.url, (error, action) => this.#report(error, action));
    this.#commands = this.#connection.commands;
  }

  streamKey(topic: string): string {
    return `${this.#resolved.prefix}{${topic}}`;
  }

  delayedKey(topic: string, group: string): string {
    return `${this.#resolved.prefix}{${topic}}:delayed:${group}`;
  }

  async publish(message: OutgoingMessage): Promise<void> {
    await this.publishBatch([message]);
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#lifecycle.checkPublish(messages, this.capabilities.maxMessageBytes);
    for (const message of messages) {
      checkName('topic', message.topic);
      checkHeaderNames(message);
    }
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
      throw redisErrors.toBrokerError(error, 'confirm the publish');
    }
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    this.#lifecycle.assertOpen('declareGroup');
    checkName('topic', topic);
    checkName('group', group);
    await this.#ensureReady();
    await this.#createGroup(topic, group, '$');
  }

  /**
   * Entries the group has not acknowledged: those not delivered to it yet (the group's `lag` in
   * XINFO GROUPS, Redis 7; where the server gives none, XLEN minus the group's `entries-read`, an
   * upper bound) plus its pending-entries list (delivered, not acknowledged yet, nacks included).
   */
  async pending(topic: string, group: string): Promise<number | undefined> {
    if (this.#lifecycle.closed) return undefined;
    checkName('topic', topic);
    checkName('group', group);
    const key = this.streamKey(topic);
    let groups: unknown[];
    try {
      groups = (await this.#commands.xinfo('GROUPS', key)) as unknown[];
    } catch (error) {
      if (/no such key/i.test(describeError(error))) return undefined;
      throw redisErrors.toBrokerError(error, `read the groups of ${key}`);
    }
    for (const entry of groups) {
      const fields = fieldsOf(entry);
      if (fields.get('name') !== group) continue;
      const inList = Number(fields.get('pending') ?? 0);
      const lag = fields.get('lag');
      if (typeof lag === 'number') return lag + inList;
      const read = fields.get('entries-read');
      const length = await this.#commands.xlen(key);
      return Math.max(0, length - (typeof read === 'number' ? read : 0)) + inList;
    }
    return undefined;
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#lifecycle.assertOpen('subscribe');
    const { topic, group } = options;
    checkName('topic', topic);
    checkName('group', group);
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options, { integerAckTimeout: true });
    await this.#ensureReady();
    await this.#createGroup(topic, group, '$');
    this.#lifecycle.assertOpen('subscribe');
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
        pollIntervalMs: this.#resolved.pollIntervalMs,
        claimIntervalMs: this.#resolved.claimIntervalMs ?? Math.min(5000, Math.max(1, Math.floor(ackTimeoutMs / 2))),
        drainTimeoutMs: this.#resolved.drainTimeoutMs,
        ensureGroup: (startId) => this.#createGroup(topic, group, startId),
        report: (error, action) => this.#report(error, action),
        onClosed: (closed) => this.#lifecycle.forget(closed),
      },
      handler,
    );
    this.#lifecycle.add(subscription).start();
    return subscription;
  }

  close(): Promise<void> {
    return this.#lifecycle.close({ after: () => this.#connection.quit() });
  }

  #xaddArgs(message: OutgoingMessage): (string | number | Buffer)[] {
    const { trim, maxAgeMs } = this.#resolved;
    const cut = maxAgeMs === undefined ? trim : [...trim, `${Date.now() - maxAgeMs}-0`];
    return [this.streamKey(message.topic), ...cut, '*', ...encodeFields(message)];
  }

  async #createGroup(topic: string, group: string, startId: '$' | '0'): Promise<void> {
    try {
      await this.#commands.xgroup('CREATE', this.streamKey(topic), group, startId, 'MKSTREAM');
    } catch (error) {
      if (/BUSYGROUP/.test(describeError(error))) return;
      throw redisErrors.toBrokerError(error, `create consumer group ${group}`);
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
        if (!isSwitchboardError(error, 'SB_CONFIG_INVALID')) this.#verified = undefined;
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
      throw redisErrors.toBrokerError(error, 'read its configuration');
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
    this.#options.onError?.(redisErrors.toBrokerError(error, action));
  }
}

/** Creates a Redis Streams broker. It connects lazily; the first command waits for the connection. */
export function createRedisStreamsBroker(options: RedisStreamsBrokerOptions = {}): RedisStreamsBroker {
  return new RedisStreamsBroker(options);
}

/** A flat `[name, value, ...]` reply as a map. */
function fieldsOf(reply: unknown): Map<string, unknown> {
  const fields = new Map<string, unknown>();
  if (!Array.isArray(reply)) return fields;
  for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1]);
  return fields;
}
