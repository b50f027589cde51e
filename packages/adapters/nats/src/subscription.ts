import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/nats-core';
import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { DeliveryTracker, idle } from '@switchboard/core/kit';
import { fromNatsHeaders, type ReceivedHeaders } from './binding.js';
import { natsErrors } from './connection.js';
import { readCoreHeaders } from './core-headers.js';
import { messageIdOf } from './dedup.js';
import { type BatchAck, NatsDelivery } from './delivery.js';

export interface NatsSubscriptionConfig {
  readonly topic: string;
  readonly group: string;
  readonly consumer: Consumer;
  readonly handler: DeliveryHandler;
  readonly maxInFlight: number;
  readonly ackTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly fetchExpiresMs: number;
  /** Flushes the connection (acks confirmed by one round trip); undefined: a double ack per message. */
  readonly flush: (() => Promise<void>) | undefined;
  readonly onClosed: (subscription: NatsSubscription) => void;
}

/** Longest free slots wait for others before they are pulled for on their own. */
const TOP_UP_MS = 5;

/**
 * The headers of a JetStream message, read from the received bytes of the core message it wraps
 * (one pass, no client header object) where the client exposes it, through `msg.headers` otherwise.
 */
function readHeaders(msg: JsMsg): ReceivedHeaders {
  const inner = (msg as unknown as { readonly msg?: Msg }).msg;
  return inner === undefined ? fromNatsHeaders(msg.headers) : readCoreHeaders(inner);
}

/**
 * A pull loop on a durable consumer, its deliveries kept by the kit's `DeliveryTracker`. It only
 * asks JetStream for as many messages as it has free slots, so nothing waits in a local buffer
 * while its ack timer runs; and it pulls again once half the slots are free (or, after a short
 * top-up wait, whatever is free), so a busy consumer pulls in large batches rather than one
 * message per settled delivery.
 */
export class NatsSubscription implements Subscription {
  readonly topic: string;
  readonly group: string;
  readonly #config: NatsSubscriptionConfig;
  readonly #tracker: DeliveryTracker<NatsDelivery>;
  readonly #half: number;
  readonly #batchAck: BatchAck | undefined;
  #acks: JsMsg[] = [];
  #acksSent: Promise<void> | undefined;
  #batch: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(config: NatsSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#tracker = new DeliveryTracker({ maxInFlight: config.maxInFlight, ackTimeoutMs: config.ackTimeoutMs, handler: config.handler });
    this.#half = Math.max(1, Math.ceil(config.maxInFlight / 2));
    const flush = config.flush;
    this.#batchAck = flush && ((msg) => this.#ack(msg, flush));
  }

  /**
   * The acks of one tick go out together, in one write, then one flush confirms them all. (Sent
   * one by one from separate promise chains, each ack would be a socket write of its own.)
   */
  #ack(msg: JsMsg, flush: () => Promise<void>): Promise<void> {
    this.#acks.push(msg);
    this.#acksSent ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const acks = this.#acks;
      this.#acks = [];
      this.#acksSent = undefined;
      for (const ack of acks) ack.ack();
      return flush().catch((error: unknown) => {
        throw natsErrors.toBrokerError(error, `ack of ${acks.length} message(s)`);
      });
    });
    return this.#acksSent;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const tracker = this.#tracker;
    let failures = 0;
    while (!tracker.closing) {
      await tracker.waitForCapacity(this.#half, TOP_UP_MS);
      const free = tracker.free;
      if (free <= 0) continue;
      try {
        const batch = await this.#config.consumer.fetch({ max_messages: free, expires: this.#config.fetchExpiresMs });
        this.#batch = batch;
        for await (const msg of batch) {
          if (tracker.closing) msg.nak();
          else this.#dispatch(msg);
        }
        failures = 0;
      } catch {
        // Connection lost, consumer missing, heartbeats missed: pull again after a short pause.
        failures += 1;
        if (!tracker.closing) await idle(Math.min(2000, 25 * 2 ** failures));
      } finally {
        this.#batch = undefined;
      }
    }
  }

  #dispatch(msg: JsMsg): void {
    const received = readHeaders(msg);
    const id = messageIdOf(received.id) || `${msg.info.stream}:${msg.seq}`;
    this.#tracker.dispatch(new NatsDelivery(msg, { id, topic: this.topic, headers: received.headers, key: received.key }, this.#batchAck));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { drainTimeoutMs, fetchExpiresMs } = this.#config;
    const drained = this.#tracker.close(drainTimeoutMs);
    // An open pull request lives until it expires; whatever it still brings is given back.
    const loopDone = Promise.race([this.#loop, idle(fetchExpiresMs + 1000).then(() => this.#batch?.stop())]);
    await Promise.all([loopDone, drained]);
    this.#config.onClosed(this);
  }
}
