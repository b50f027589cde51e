import { createHash, randomBytes } from 'node:crypto';
import type { Broker, BrokerCapabilities, DeliveryHandler, OutgoingMessage, SubscribeOptions, Subscription } from '@switchboard/core';
import { type CloudEventsBinding, cloudEventsBindings, SwitchboardError, withMode } from '@switchboard/core';
import { atMostOnceCapabilities, BrokerLifecycle, PushSubscription, resolveSubscribeOptions } from '@switchboard/core/kit';
import { Redis } from 'ioredis';
import { CommandConnection } from './connection.js';
import { redisErrors } from './errors.js';
import { checkName, REDIS_MAX_BULK, type RedisPubSubBrokerOptions, type ResolvedPubSubOptions, resolvePubSubOptions } from './options.js';
import { encodeMessage, frameOverhead, frameOverheadBound } from './pubsub-codec.js';
import { PubSubMember } from './pubsub-member.js';

export type { RedisPubSubBrokerOptions } from './options.js';

/** PUBLISHes many messages in one command: `ARGV` is channel, frame, channel, frame, ... */
const PUBLISH_MANY = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end return #ARGV / 2";
const PUBLISH_MANY_SHA = createHash('sha1').update(PUBLISH_MANY).digest('hex');
/** Messages per PUBLISH_MANY call: keeps each script short (it holds the server while it runs). */
const MESSAGES_PER_SCRIPT = 256;

/** The publishes of one event-loop turn that go out in one command, and the promise they share. */
interface PublishChunk {
  /** channel, frame, channel, frame, ... */
  readonly args: (string | Buffer)[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

/** A server that does not let this client run scripts (ACL, scripting disabled or unknown). */
function isScriptRefused(error: unknown): boolean {
  const message = String((error as Error)?.message);
  return message.startsWith('NOPERM') || message.startsWith('ERR unknown command') || /script.*(disabled|not allowed)/i.test(message);
}

/** An at-most-once broker on Redis PUBLISH / SUBSCRIBE. See `docs/adapters/redis.md`. */
export function createRedisPubSubBroker(options: RedisPubSubBrokerOptions = {}): RedisPubSubBroker {
  return new RedisPubSubBroker(options);
}

/**
 * Redis pub/sub as an at-most-once broker: `publish` resolves on the server's reply to PUBLISH
 * (the message was handed to the connections subscribed at that moment), nothing is stored, `ack`
 * and `nack` are no-ops. Every group gets its copy; members of one group share the messages
 * through per-delivery claims, only while the group has more than one member (`PubSubMember`).
 */
export class RedisPubSubBroker implements Broker {
  readonly name = 'redis-pubsub';
  readonly binding: CloudEventsBinding = withMode(cloudEventsBindings.plain, 'structured');
  readonly capabilities: BrokerCapabilities;
  readonly #commands: Redis;
  readonly #connection: CommandConnection;
  readonly #options: RedisPubSubBrokerOptions;
  readonly #resolved: ResolvedPubSubOptions;
  readonly #nonceBase = randomBytes(6).toString('base64url');
  readonly #lifecycle = new BrokerLifecycle<PushSubscription>(redisErrors);
  #nonce = 0;
  /** Publishes waiting for the end of this event-loop turn, in order; the last one still takes more. */
  #chunks: PublishChunk[] = [];
  #chunk: PublishChunk | undefined;
  /** False once the server refused scripts: publishes are then pipelined PUBLISHes. */
  #scripts = true;

  constructor(options: RedisPubSubBrokerOptions = {}) {
    this.#resolved = resolvePubSubOptions(options);
    this.#options = options;
    this.capabilities = atMostOnceCapabilities('per-topic', this.#resolved.maxMessageBytes);
    // Auto-pipelining: the PUBLISHes of one event-loop turn leave in one write.
    this.#connection = new CommandConnection(options, this.#resolved.url, (error, action) => this.#report(error, action), {
      enableAutoPipelining: true,
    });
    this.#commands = this.#connection.commands;
  }

  /**
   * Resolves on the server's reply. The publishes of one event-loop turn leave together: up to
   * 256 of them in one script call that PUBLISHes each in order (one command instead of one per
   * message), a single one as a plain PUBLISH. They share the outcome of that call.
   */
  publish(message: OutgoingMessage): Promise<void> {
    let frame: Buffer;
    try {
      this.#lifecycle.assertOpen('publish');
      frame = this.#frame(message);
    } catch (error) {
      return Promise.reject(error);
    }
    let chunk = this.#chunk;
    if (chunk === undefined || chunk.args.length >= 2 * MESSAGES_PER_SCRIPT) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      chunk = { args: [], done, resolve, reject };
      this.#chunk = chunk;
      if (this.#chunks.push(chunk) === 1) setImmediate(this.#flushChunks);
    }
    chunk.args.push(this.#channel(message.topic), frame);
    return chunk.done;
  }

  readonly #flushChunks = (): void => {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#chunk = undefined;
    for (const chunk of chunks)
      this.#sendChunk(chunk).then(chunk.resolve, (error: unknown) => chunk.reject(redisErrors.toBrokerError(error, 'publish')));
  };

  async #sendChunk(chunk: PublishChunk): Promise<void> {
    const { args } = chunk;
    if (args.length === 2) {
      await this.#commands.publish(args[0] as string, args[1] as Buffer);
      return;
    }
    if (this.#scripts) {
      try {
        await this.#commands.evalsha(PUBLISH_MANY_SHA, 0, ...args);
        return;
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) {
          if (!isScriptRefused(error)) throw error;
          // Scripts are not allowed here (ACL, disabled): nothing of this call went out; plain PUBLISHes from now on.
          this.#scripts = false;
        } else {
          await this.#commands.eval(PUBLISH_MANY, 0, ...args);
          return;
        }
      }
    }
    const pipeline = this.#commands.pipeline();
    for (let i = 0; i < args.length; i += 2) pipeline.publish(args[i] as string, args[i + 1] as Buffer);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('pipeline aborted');
  }

  /** One pipeline (one round trip); not a transaction: after a connection failure, a prefix may have gone out. */
  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    this.#lifecycle.assertOpen('publish');
    if (messages.length === 0) return;
    const frames = messages.map((message) => this.#frame(message));
    const pipeline = this.#commands.pipeline();
    for (const [i, message] of messages.entries()) pipeline.publish(this.#channel(message.topic), frames[i]!);
    let results: [Error | null, unknown][] | null;
    try {
      results = await pipeline.exec();
    } catch (error) {
      throw redisErrors.toBrokerError(error, 'publish a batch');
    }
    const failed = results?.find(([error]) => error !== null);
    if (results === null || failed !== undefined)
      throw redisErrors.toBrokerError(failed?.[0] ?? new Error('pipeline aborted'), 'publish a batch');
  }

  /** Nothing to declare: a group exists while one of its subscribers is connected. */
  async declareGroup(topic: string, group: string): Promise<void> {
    this.#lifecycle.assertOpen('declareGroup');
    checkName('topic', topic);
    checkName('group', group);
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    this.#lifecycle.assertOpen('subscribe');
    const { topic, group } = options;
    checkName('topic', topic);
    checkName('group', group);
    // ackTimeoutMs is checked for the contract, unused: nothing is ever redelivered.
    const { maxInFlight } = resolveSubscribeOptions(options);
    const subscriber = this.#connection.owned
      ? new Redis(this.#resolved.url, { ...this.#options.redisOptions })
      : this.#commands.duplicate();
    subscriber.on('error', (error: unknown) => this.#report(error, 'keep a subscription connected'));
    let member: PubSubMember | undefined;
    const subscription = new PushSubscription({
      topic,
      group,
      handler,
      maxInFlight,
      maxPending: this.#resolved.maxPending,
      drainTimeoutMs: this.#resolved.drainTimeoutMs,
      onDrop: this.#options.onDrop,
      stop: async () => {
        await member?.stop();
        await subscriber.quit().catch(() => subscriber.disconnect());
      },
      onClosed: (closed) => this.#lifecycle.forget(closed),
    });
    member = new PubSubMember(
      {
        id: `${this.#nonceBase}.${randomBytes(6).toString('base64url')}`,
        topic,
        group,
        topicChannel: this.#channel(topic),
        groupChannel: `${this.#resolved.prefix}ps-group:${topic}:${group}`,
        claimKeyPrefix: `${this.#resolved.prefix}ps-claim:${topic}:${group}:`,
        claimTtlMs: this.#resolved.claimTtlMs,
        fallbackClaimDelayMs: this.#resolved.fallbackClaimDelayMs,
        membershipIntervalMs: this.#resolved.membershipIntervalMs,
        commands: this.#commands,
        subscriber,
        onError: (error, action) => this.#report(error, action),
      },
      subscription,
    );
    try {
      await member.start();
    } catch (error) {
      subscriber.disconnect();
      throw redisErrors.toBrokerError(error, `subscribe to ${topic}`);
    }
    return this.#lifecycle.add(subscription);
  }

  close(): Promise<void> {
    return this.#lifecycle.close({
      // Publishes accepted before close still go out.
      before: async () => {
        const waiting = this.#chunks.map((chunk) => chunk.done.catch(() => {}));
        if (waiting.length > 0) this.#flushChunks();
        await Promise.all(waiting);
      },
      after: () => this.#connection.quit(),
    });
  }

  #channel(topic: string): string {
    return `${this.#resolved.prefix}ps:${topic}`;
  }

  #frame(message: OutgoingMessage): Buffer {
    const limit = this.capabilities.maxMessageBytes;
    const bytes = message.body.byteLength;
    if (bytes > limit || (bytes + frameOverheadBound(message) > REDIS_MAX_BULK && bytes + frameOverhead(message) > REDIS_MAX_BULK)) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `${message.body.byteLength} bytes is over the limit of ${limit} bytes`,
      });
    }
    return encodeMessage(message, `${this.#nonceBase}${(this.#nonce++).toString(36)}`);
  }

  #report(error: unknown, action: string): void {
    this.#options.onError?.(redisErrors.toBrokerError(error, action));
  }
}
