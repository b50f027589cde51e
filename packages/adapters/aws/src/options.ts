import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { AwsConnectionOptions } from './clients.js';
import { configError } from './errors.js';
import type { S3BlobStore } from './s3-blob-store.js';
import { SNS_MAX_BYTES } from './wire.js';

export interface PayloadOffloadOptions {
  /** Where large bodies go (the same bucket Java and Python extended clients are configured with, to interoperate). */
  readonly store: S3BlobStore;
  /** Messages (body and attributes) bigger than this many bytes are offloaded. Default and most 262 144 (SNS's limit); 0: every message. */
  readonly thresholdBytes?: number;
  /** Largest body offloaded, and read back from a pointer (a pointer names any size: this caps what is fetched). Default 64 MiB. */
  readonly maxBytes?: number;
  /** How long an offloaded body is kept. Default 15 days: longer than SQS keeps a message (14 days at most). */
  readonly retentionMs?: number;
}

export interface SnsSqsBrokerOptions extends AwsConnectionOptions {
  /** Clients of your own (tests pass stubs; their endpoint, region and credentials win). Default: made from the connection options. */
  readonly clients?: { readonly sns: SNSClient; readonly sqs: SQSClient };
  /** Prepended to every topic and queue name (see `snsTopicName`, `sqsQueueName`). Default `''`. */
  readonly prefix?: string;
  /**
   * Topics on FIFO topics and queues (`.fifo`): `MessageGroupId` = the ordering key, ordered per key,
   * publishes deduplicated for 5 minutes. `true`: every topic; a list or a predicate: those topics.
   * Default `false`.
   */
  readonly fifo?: boolean | readonly string[] | ((topic: string) => boolean);
  /** `create` (default): create topics, queues and subscriptions, correct drift. `verify`: only check them (infrastructure-as-code owns them). */
  readonly provision?: 'create' | 'verify';
  /**
   * How long a received message stays hidden if this process dies, in seconds (the queue's
   * `VisibilityTimeout` and each receive's). Heartbeats renew it while a handler runs. Default 30.
   */
  readonly visibilityTimeoutSeconds?: number;
  /** Long-poll wait of a receive, 1–20 s. `close` lets a running poll finish, so it can take this long. Default 20. */
  readonly waitTimeSeconds?: number;
  /** Long-poll loops per subscription. Default 2. */
  readonly receiveLoops?: number;
  /**
   * Receives after which SQS moves a message to the group's dead-letter queue on its own: the
   * backstop behind Switchboard's dead letters, so keep it above the messaging layer's attempts
   * (a crash or an unfinished FIFO batch also counts a receive). Default 10.
   */
  readonly maxReceiveCount?: number;
  /** How long a group's queue keeps a message, in seconds. Default 4 days. */
  readonly retentionSeconds?: number;
  /** How long a dead-letter queue keeps a message, in seconds: longer than the queue (SQS keeps a standard queue's enqueue time). Default 14 days. */
  readonly deadLetterRetentionSeconds?: number;
  /** CloudEvents types a group takes (an SNS filter policy on `ce-type`); `undefined`: all of the topic's messages. */
  readonly eventTypes?: (topic: string, group: string) => readonly string[] | undefined;
  /** Bodies too large for SNS go to S3 with an AWS extended-client pointer; pointers that arrive are read. Default off: `SB_MESSAGE_TOO_LARGE`. */
  readonly payloadOffload?: PayloadOffloadOptions;
  /** How long one publish may keep retrying what SNS failed on its side. Default 15 000 ms. */
  readonly publishTimeoutMs?: number;
  /** `PublishBatch` calls in flight at once per topic. Default 16. */
  readonly publishConcurrency?: number;
  /** How long `close()` waits for running handlers before releasing their deliveries. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Told about failures nobody awaits (a receive that failed, a heartbeat, a release). Default: nothing. */
  readonly onError?: (error: unknown, action: string) => void;
}

export interface ResolvedOptions {
  readonly prefix: string;
  readonly fifo: (topic: string) => boolean;
  readonly fifoEverywhere: boolean;
  readonly provision: 'create' | 'verify';
  readonly visibilityTimeoutSeconds: number;
  readonly waitTimeSeconds: number;
  readonly receiveLoops: number;
  readonly maxReceiveCount: number;
  readonly retentionSeconds: number;
  readonly deadLetterRetentionSeconds: number;
  readonly eventTypes: (topic: string, group: string) => readonly string[] | undefined;
  readonly offload:
    | { readonly store: S3BlobStore; readonly thresholdBytes: number; readonly maxBytes: number; readonly retentionMs: number }
    | undefined;
  readonly publishTimeoutMs: number;
  readonly publishConcurrency: number;
  readonly drainTimeoutMs: number;
  readonly onError: (error: unknown, action: string) => void;
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw configError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

export function resolveOptions(options: SnsSqsBrokerOptions): ResolvedOptions {
  const fifo = options.fifo ?? false;
  const fifoOf =
    typeof fifo === 'function'
      ? fifo
      : typeof fifo === 'boolean'
        ? () => fifo
        : (() => {
            const topics = new Set(fifo);
            return (topic: string) => topics.has(topic);
          })();
  const prefix = options.prefix ?? '';
  if (!/^[A-Za-z0-9_.-]*$/.test(prefix)) throw configError(`prefix "${prefix}" may hold only letters, digits, '_', '-' and '.'`);
  const offload = options.payloadOffload;
  return {
    prefix,
    fifo: fifoOf,
    fifoEverywhere: fifo === true,
    provision: options.provision ?? 'create',
    visibilityTimeoutSeconds: integer('visibilityTimeoutSeconds', options.visibilityTimeoutSeconds ?? 30, 1, 43_200),
    waitTimeSeconds: integer('waitTimeSeconds', options.waitTimeSeconds ?? 20, 0, 20),
    receiveLoops: integer('receiveLoops', options.receiveLoops ?? 2, 1, 64),
    maxReceiveCount: integer('maxReceiveCount', options.maxReceiveCount ?? 10, 1, 1000),
    retentionSeconds: integer('retentionSeconds', options.retentionSeconds ?? 4 * 86_400, 60, 1_209_600),
    deadLetterRetentionSeconds: integer('deadLetterRetentionSeconds', options.deadLetterRetentionSeconds ?? 1_209_600, 60, 1_209_600),
    eventTypes: options.eventTypes ?? (() => undefined),
    offload:
      offload === undefined
        ? undefined
        : {
            store: offload.store,
            thresholdBytes: integer('payloadOffload.thresholdBytes', offload.thresholdBytes ?? SNS_MAX_BYTES, 0, SNS_MAX_BYTES),
            maxBytes: integer('payloadOffload.maxBytes', offload.maxBytes ?? 64 * 1024 * 1024, 1, 2 ** 31 - 1),
            retentionMs: offload.retentionMs ?? 15 * 86_400_000,
          },
    publishTimeoutMs: options.publishTimeoutMs ?? 15_000,
    publishConcurrency: integer('publishConcurrency', options.publishConcurrency ?? 16, 1, 1024),
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
    onError: options.onError ?? (() => {}),
  };
}
