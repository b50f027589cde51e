import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/nats-core';
import type { DeliveryHandler, Subscription } from '@switchboard/core';
import { AckDeadlines } from '@switchboard/core/kit';
import { readCoreHeaders } from './core-headers.js';
import { type DeliveryOwner, NatsDelivery } from './delivery.js';
import { fromNatsHeaders, type ReceivedHeaders } from './headers.js';
import { idle } from './timers.js';

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

/** Longest a free slot waits for others before it is pulled for on its own. */
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
 * A pull loop on a durable consumer. It only asks JetStream for as many messages as it has free
 * slots (`maxInFlight` minus unsettled deliveries), so nothing waits in a local buffer while its
 * ack timer runs; and it pulls again once at least half the slots are free, so a busy consumer
 * pulls in large batches rather than one message per settled delivery.
 */
export class NatsSubscription implements Subscription, DeliveryOwner {
  readonly topic: string;
  readonly group: string;
  readonly #config: NatsSubscriptionConfig;
  readonly #running = new Set<Promise<void>>();
  readonly #unsettled = new Set<NatsDelivery>();
  readonly #deadlines: AckDeadlines<NatsDelivery>;
  readonly #refillAt: number;
  readonly batchAck: ((msg: JsMsg) => Promise<void>) | undefined;
  #acks: JsMsg[] = [];
  #acksSent: Promise<void> | undefined;
  #free: number;
  #wake: (() => void) | undefined;
  #stopping = false;
  #batch: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(config: NatsSubscriptionConfig) {
    this.topic = config.topic;
    this.group = config.group;
    this.#config = config;
    this.#free = config.maxInFlight;
    this.#refillAt = Math.max(1, Math.ceil(config.maxInFlight / 2));
    this.#deadlines = new AckDeadlines(config.ackTimeoutMs, (delivery) => delivery.expire());
    const flush = config.flush;
    this.batchAck = flush && ((msg) => this.#batchAck(msg, flush));
  }

  /**
   * The acks of one tick go out together, in one write, then one flush confirms them all. (Sent
   * one by one from separate promise chains, each ack would be a socket write of its own.)
   */
  #batchAck(msg: JsMsg, flush: () => Promise<void>): Promise<void> {
    this.#acks.push(msg);
    this.#acksSent ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const acks = this.#acks;
      this.#acks = [];
      this.#acksSent = undefined;
      for (const ack of acks) ack.ack();
      return flush();
    });
    return this.#acksSent;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopping) {
      if (this.#free < this.#refillAt) {
        // Wait for half the slots to be free, but leave free slots idle no longer than TOP_UP_MS
        // (deliveries held unsettled must not keep the others from being pulled).
        await new Promise<void>((resolve) => {
          const timer = this.#free > 0 ? setTimeout(() => this.#wake?.(), TOP_UP_MS) : undefined;
          this.#wake = () => {
            clearTimeout(timer);
            this.#wake = undefined;
            resolve();
          };
        });
        if (this.#free <= 0) continue;
      }
      try {
        const batch = await this.#config.consumer.fetch({ max_messages: this.#free, expires: this.#config.fetchExpiresMs });
        this.#batch = batch;
        for await (const msg of batch) {
          if (this.#stopping) msg.nak();
          else this.#dispatch(msg);
        }
        failures = 0;
      } catch {
        // Connection lost, consumer missing, heartbeats missed: pull again after a short pause.
        failures += 1;
        if (!this.#stopping) await idle(Math.min(2000, 25 * 2 ** failures));
      } finally {
        this.#batch = undefined;
      }
    }
  }

  #dispatch(msg: JsMsg): void {
    this.#free -= 1;
    const received = readHeaders(msg);
    const delivery = new NatsDelivery(
      msg,
      { id: received.id || `${msg.info.stream}:${msg.seq}`, topic: this.topic, headers: received.headers, key: received.key },
      this,
    );
    this.#unsettled.add(delivery);
    this.#deadlines.add(delivery);
    const run = this.#handle(delivery).finally(() => this.#running.delete(run));
    this.#running.add(run);
  }

  async #handle(delivery: NatsDelivery): Promise<void> {
    try {
      await this.#config.handler(delivery);
    } catch {
      await delivery.nack().catch(() => {});
    }
  }

  release(delivery: NatsDelivery): void {
    if (!this.#unsettled.delete(delivery)) return;
    this.#deadlines.delete(delivery);
    this.#free += 1;
    // The first free slot starts the top-up wait; half the slots free pull at once.
    if (this.#free >= this.#refillAt || this.#free === 1 || this.#stopping) this.#wake?.();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    const { drainTimeoutMs, fetchExpiresMs } = this.#config;
    // An open pull request lives until it expires; whatever it still brings is given back.
    const loopDone = Promise.race([this.#loop, idle(fetchExpiresMs + 1000).then(() => this.#batch?.stop())]);
    const handlersDone = Promise.race([Promise.allSettled([...this.#running]), idle(drainTimeoutMs)]);
    await Promise.all([loopDone, handlersDone]);
    for (const delivery of [...this.#unsettled]) await delivery.nack().catch(() => {});
    this.#deadlines.clear();
    this.#config.onClosed(this);
  }
}
