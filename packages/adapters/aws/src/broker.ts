import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import type {
  Broker,
  BrokerCapabilities,
  CloudEventsBinding,
  DeliveryHandler,
  OutgoingMessage,
  SubscribeOptions,
  Subscription,
} from '@switchboard/core';
import { cloudEventsBindings } from '@switchboard/core';
import { resolveSubscribeOptions } from '@switchboard/core/kit';
import { clientConfig } from './clients.js';
import { MAX_VISIBILITY_SECONDS } from './delivery.js';
import { closedError, configError, toBrokerError } from './errors.js';
import { assertGroup, assertTopic } from './names.js';
import { type ResolvedOptions, resolveOptions, type SnsSqsBrokerOptions } from './options.js';
import { type PublishReceipt, SnsPublisher } from './publisher.js';
import { SqsSubscription } from './subscription.js';
import { type GroupQueue, Topology } from './topology.js';
import { SNS_MAX_BYTES } from './wire.js';

/**
 * SNS and SQS have no CloudEvents protocol binding. Switchboard's: structured mode (the whole
 * event, `application/cloudevents+json`, is the message body), with `content-type` and the routing
 * attributes `ce-type` and `ce-source` copied into message attributes for filter policies (a copy
 * the data model cannot express, so the adapter writes it; see `wire.ts`). On receive, binary mode
 * (`ce-` message attributes, the data as the body) is read as well, and a message with neither
 * attributes nor a content type is read as a structured event: what a plain `sns.publish` of a
 * CloudEvent JSON document sends.
 */
export const snsSqsBinding: CloudEventsBinding = cloudEventsBindings.snsSqs;

/** Bytes kept for the attributes under SNS's 256 KiB when a body is checked against `maxMessageBytes`. */
const ATTRIBUTE_RESERVE = 8 * 1024;

/**
 * Connects to SNS and SQS (AWS, or an emulator at `endpoint`) and returns a broker: an SNS topic
 * per topic, an SQS queue with its dead-letter queue per consumer group, subscribed with raw
 * delivery. See `docs/adapters/aws.md`.
 */
export async function createSnsSqsBroker(options: SnsSqsBrokerOptions = {}): Promise<SnsSqsBroker> {
  return new SnsSqsBroker(options);
}

export class SnsSqsBroker implements Broker {
  readonly name = 'sns-sqs';
  readonly binding: CloudEventsBinding = snsSqsBinding;
  readonly capabilities: BrokerCapabilities;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  readonly #ownClients: boolean;
  readonly #options: ResolvedOptions;
  readonly #topology: Topology;
  readonly #publisher: SnsPublisher;
  readonly #subscriptions = new Set<SqsSubscription>();
  readonly #publishing = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(options: SnsSqsBrokerOptions = {}) {
    this.#options = resolveOptions(options);
    this.#ownClients = options.clients === undefined;
    this.sns = options.clients?.sns ?? new SNSClient(clientConfig(options, 'sns'));
    this.sqs = options.clients?.sqs ?? new SQSClient(clientConfig(options, 'sqs'));
    const o = this.#options;
    this.#topology = new Topology(this.sns, this.sqs, {
      prefix: o.prefix,
      fifo: o.fifo,
      provision: o.provision,
      visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
      maxReceiveCount: o.maxReceiveCount,
      retentionSeconds: o.retentionSeconds,
      deadLetterRetentionSeconds: o.deadLetterRetentionSeconds,
      eventTypes: o.eventTypes,
    });
    const maxMessageBytes = o.offload?.maxBytes ?? SNS_MAX_BYTES - ATTRIBUTE_RESERVE;
    this.#publisher = new SnsPublisher(this.sns, this.#topology, {
      offload: o.offload,
      maxMessageBytes,
      publishTimeoutMs: o.publishTimeoutMs,
      concurrency: o.publishConcurrency,
    });
    this.capabilities = {
      delivery: 'at-least-once',
      persistent: true,
      multiProcess: true,
      ordering: o.fifoEverywhere ? 'per-key' : 'none',
      delayedRedelivery: true,
      publishDeduplication: o.fifoEverywhere,
      maxMessageBytes,
    };
  }

  /** The SNS topic and SQS queue names this broker uses (for infrastructure-as-code and for looking at them in the console). */
  names(topic: string, group?: string): { topic: string; queue?: string } {
    return {
      topic: this.#topology.topicName(topic),
      ...(group === undefined ? {} : { queue: this.#topology.queueName(topic, group) }),
    };
  }

  async publish(message: OutgoingMessage): Promise<void> {
    await this.publishDetailed(message);
  }

  /** Publishes and answers what SNS said: its MessageId (kept nowhere else with raw delivery) and, on FIFO, the sequence number. */
  publishDetailed(message: OutgoingMessage): Promise<PublishReceipt> {
    if (this.#closing !== undefined) return Promise.reject(closedError('publish'));
    return this.#track(this.#publisher.publish(message));
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<void> {
    await this.publishBatchDetailed(messages);
  }

  /** `publishBatch`, answering one receipt per message in order. */
  publishBatchDetailed(messages: readonly OutgoingMessage[]): Promise<PublishReceipt[]> {
    if (this.#closing !== undefined) return Promise.reject(closedError('publishBatch'));
    if (messages.length === 0) return Promise.resolve([]);
    return this.#track(this.#publisher.publishBatch(messages));
  }

  #track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.catch((error: unknown) => {
      throw toBrokerError(error, 'publish');
    });
    this.#publishing.add(tracked);
    void tracked.then(
      () => this.#publishing.delete(tracked),
      () => this.#publishing.delete(tracked),
    );
    return tracked;
  }

  async declareGroup(topic: string, group: string): Promise<void> {
    await this.#group(topic, group, 'declareGroup');
  }

  async #group(topic: string, group: string, what: string): Promise<GroupQueue> {
    if (this.#closing !== undefined) throw closedError(what);
    assertTopic(topic);
    assertGroup(group);
    try {
      return await this.#topology.group(topic, group);
    } catch (error) {
      throw toBrokerError(error, `${what} ${topic}/${group}`);
    }
  }

  async subscribe(options: SubscribeOptions, handler: DeliveryHandler): Promise<Subscription> {
    if (this.#closing !== undefined) throw closedError('subscribe');
    const { maxInFlight, ackTimeoutMs } = resolveSubscribeOptions(options);
    if (ackTimeoutMs > MAX_VISIBILITY_SECONDS * 1000) {
      throw configError(`ackTimeoutMs must be at most ${MAX_VISIBILITY_SECONDS * 1000} (SQS keeps a message hidden 12 hours at most)`);
    }
    const queue = await this.#group(options.topic, options.group, 'subscribe');
    const o = this.#options;
    const offload = o.offload;
    const subscription = new SqsSubscription({
      topic: options.topic,
      group: options.group,
      sqs: this.sqs,
      queue,
      redeclare:
        o.provision === 'create'
          ? () => {
              this.#topology.forget(options.topic, options.group);
              return this.#topology.group(options.topic, options.group);
            }
          : undefined,
      handler,
      maxInFlight,
      ackTimeoutMs,
      leaseSeconds: Math.min(o.visibilityTimeoutSeconds, Math.max(1, Math.ceil(ackTimeoutMs / 1000))),
      waitTimeSeconds: o.waitTimeSeconds,
      receiveLoops: o.receiveLoops,
      drainTimeoutMs: o.drainTimeoutMs,
      fetchPayload:
        offload === undefined
          ? undefined
          : (pointer) => offload.store.readObject(pointer.bucket, pointer.key, offload.maxBytes, pointer.size),
      report: o.onError,
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
    await Promise.allSettled([...this.#publishing]);
    if (this.#ownClients) {
      this.sns.destroy();
      this.sqs.destroy();
    }
  }
}
