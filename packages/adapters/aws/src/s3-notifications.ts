import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AnyContract, BlobInfo } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { isNotFound } from './errors.js';
import type { S3BlobStore } from './s3-blob-store.js';

/**
 * S3 event notifications (the "event message structure", version 2.x) delivered to SQS, directly or
 * through SNS, turned into the `blob.created` events of a contract (`blobCreated()`).
 */

/** One `ObjectCreated:*` record of an S3 event notification. */
export interface S3ObjectCreated {
  /** `ObjectCreated:Put`, `ObjectCreated:Post`, `ObjectCreated:Copy`, `ObjectCreated:CompleteMultipartUpload`. */
  readonly eventName: string;
  readonly eventTime: string;
  readonly bucket: string;
  /** The object key, decoded (S3 writes it URL-encoded, a space as `+`). */
  readonly key: string;
  readonly size?: number;
  /** The ETag as S3 reports it (MD5 hex of a single-part upload without SSE-KMS; `<hex>-<parts>` after a multipart upload). */
  readonly eTag?: string;
  readonly versionId?: string;
  /** Orders the events of one key (hex; compare after left-padding to the same length). */
  readonly sequencer?: string;
}

/** What one SQS message body holds. */
export type S3Notification =
  /** `s3:TestEvent`, sent by S3 once when the notification configuration is saved. */
  | { readonly kind: 'test'; readonly bucket: string }
  /** The `ObjectCreated:*` records, and how many other records (removals, restores, ...) were left out. */
  | { readonly kind: 'records'; readonly created: readonly S3ObjectCreated[]; readonly others: number };

/**
 * Reads an S3 event notification from an SQS message body: the S3 JSON itself, or the SNS
 * notification envelope (`{"Type":"Notification","Message":"<the S3 JSON>"}`) when the bucket notifies
 * an SNS topic with a non-raw SQS subscription. `SB_MESSAGE_INVALID` for anything else.
 */
export function parseS3Notification(body: string): S3Notification {
  let value = parseJson(body);
  if (isRecord(value) && value.Type === 'Notification' && typeof value.Message === 'string') value = parseJson(value.Message);
  if (!isRecord(value)) throw invalid('the body is not an S3 event notification');
  if (value.Event === 's3:TestEvent') {
    return { kind: 'test', bucket: typeof value.Bucket === 'string' ? value.Bucket : '' };
  }
  if (!Array.isArray(value.Records)) throw invalid('the body has no Records');
  const created: S3ObjectCreated[] = [];
  let others = 0;
  for (const record of value.Records) {
    if (!isRecord(record) || record.eventSource !== 'aws:s3' || typeof record.eventName !== 'string') {
      throw invalid('a record is not an aws:s3 event record');
    }
    if (!record.eventName.startsWith('ObjectCreated:')) {
      others += 1;
      continue;
    }
    const s3 = record.s3;
    const bucket = isRecord(s3) && isRecord(s3.bucket) ? s3.bucket.name : undefined;
    const object = isRecord(s3) && isRecord(s3.object) ? s3.object : undefined;
    if (typeof bucket !== 'string' || object === undefined || typeof object.key !== 'string') {
      throw invalid('an ObjectCreated record names no bucket or key');
    }
    let key: string;
    try {
      key = decodeURIComponent(object.key.replace(/\+/g, ' '));
    } catch {
      throw invalid('an object key is not URL-encoded UTF-8');
    }
    created.push({
      eventName: record.eventName,
      eventTime: typeof record.eventTime === 'string' ? record.eventTime : '',
      bucket,
      key,
      ...(typeof object.size === 'number' && Number.isSafeInteger(object.size) ? { size: object.size } : {}),
      ...(typeof object.eTag === 'string' ? { eTag: object.eTag } : {}),
      ...(typeof object.versionId === 'string' ? { versionId: object.versionId } : {}),
      ...(typeof object.sequencer === 'string' ? { sequencer: object.sequencer } : {}),
    });
  }
  return { kind: 'records', created, others };
}

/** What the relay does with each message (`onMessage`), for tests and metrics. */
export interface S3RelayOutcome {
  readonly messageId: string | undefined;
  /** Events emitted, one per new object. */
  readonly emitted: readonly { readonly key: string; readonly messageId: string; readonly blob: BlobInfo }[];
  /** Records left out: the store's own objects, other buckets, non-creation events, objects gone or overwritten since. */
  readonly skipped: readonly {
    readonly key: string;
    readonly reason: 'store-layout' | 'other-bucket' | 'not-created' | 'gone' | 'stale';
  }[];
  readonly test: boolean;
}

export interface S3NotificationRelayOptions<C extends AnyContract> {
  /** The SQS client and the queue the bucket's notifications arrive at. */
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /**
   * The content-addressed store of the notified bucket. A new object outside its layout is read
   * once and stored in it (hashed on the way: the event carries its SHA-256, and receivers read it
   * by claim check, verified); the original object stays where it was.
   */
  readonly store: S3BlobStore;
  /** Emits the events: this service's messaging (`createMessaging`). */
  readonly messaging: { emit(contract: C, name: never, data: never, options: never): Promise<{ readonly messageId: string }> };
  /** The contract declaring the event with `blobCreated()`. */
  readonly contract: C;
  /** Default `blob.created`. */
  readonly event?: string;
  /** SQS long-poll wait. Default 20 s (the SQS maximum). */
  readonly waitTimeSeconds?: number;
  /** Largest object adopted. Default 5 GiB (the largest single PUT). Bigger ones fail (and reach the queue's DLQ). */
  readonly maxBytes?: number;
  /** Told about messages that failed (they stay in the queue: SQS redelivers them, then its redrive policy moves them to a DLQ). */
  readonly onError?: (error: unknown, message: Message) => void;
  readonly onMessage?: (outcome: S3RelayOutcome) => void;
}

export interface S3NotificationRelay {
  /** Starts polling the queue. */
  start(): void;
  /** Handles one SQS message body (what the poll loop does for each message); resolves with what became of it. */
  handle(body: string, messageId?: string): Promise<S3RelayOutcome>;
  /** Stops polling; the message in hand finishes. */
  close(): Promise<void>;
}

/**
 * Relays S3 event notifications from an SQS queue as `blob.created` events (the data: the blob's
 * `BlobInfo`; the blob attached by claim check; `subject`: the original object key). Each SQS
 * message is deleted once all its events were emitted (and the broker confirmed them); a failure
 * leaves it in the queue for a later try. The event id is derived from the bucket, key, version and
 * sequencer of the record, so a redelivered notification gives the same MessageId and the receivers'
 * inbox takes it once. Records under the store's own layout (`sha256/`, `tmp/`, `expiry/` under its
 * key prefix) are skipped: they are the store's writes (announced, when wanted, by `withUploadEvents`).
 */
export function createS3NotificationRelay<C extends AnyContract>(options: S3NotificationRelayOptions<C>): S3NotificationRelay {
  const { sqs, queueUrl, store, contract } = options;
  const event = options.event ?? 'blob.created';
  const definition = Object.hasOwn(contract.events, event) ? contract.events[event] : undefined;
  if (definition === undefined || !definition.attachment || definition.data === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `contract ${contract.name} must declare event ${event} with blobCreated()`,
    });
  }
  const maxBytes = options.maxBytes ?? 5 * 1024 ** 3;
  const own = ['sha256/', 'tmp/', 'expiry/'].map((folder) => `${store.keyPrefix}${folder}`);
  const closing = new AbortController();
  let loop: Promise<void> | undefined;

  async function adopt(record: S3ObjectCreated): Promise<BlobInfo | 'gone' | 'stale'> {
    let output: { Body?: unknown; ContentType?: string | undefined; ContentLength?: number | undefined; ETag?: string | undefined };
    try {
      output = await store.client.send(
        new GetObjectCommand({
          Bucket: record.bucket,
          Key: record.key,
          ...(record.versionId === undefined ? {} : { VersionId: record.versionId }),
        }),
      );
    } catch (error) {
      if (isNotFound(error)) return 'gone';
      throw error;
    }
    const body = output.Body as Readable;
    // A non-versioned object written again since: that write has its own notification.
    if (record.eTag !== undefined && output.ETag !== undefined && output.ETag.replaceAll('"', '') !== record.eTag) {
      body.destroy();
      return 'stale';
    }
    if ((output.ContentLength ?? 0) > maxBytes) {
      body.destroy();
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `s3://${record.bucket}/${record.key} is over ${maxBytes} bytes` });
    }
    return store.put(body, { mediaType: output.ContentType ?? 'application/octet-stream' });
  }

  async function handle(body: string, messageId?: string): Promise<S3RelayOutcome> {
    const notification = parseS3Notification(body);
    const emitted: { key: string; messageId: string; blob: BlobInfo }[] = [];
    const skipped: S3RelayOutcome['skipped'][number][] = [];
    if (notification.kind === 'test') return { messageId, emitted, skipped, test: true };
    for (let i = 0; i < notification.others; i++) skipped.push({ key: '', reason: 'not-created' });
    for (const record of notification.created) {
      if (record.bucket !== store.bucket) {
        skipped.push({ key: record.key, reason: 'other-bucket' });
        continue;
      }
      if (own.some((prefix) => record.key.startsWith(prefix))) {
        skipped.push({ key: record.key, reason: 'store-layout' });
        continue;
      }
      const blob = await adopt(record);
      if (blob === 'gone' || blob === 'stale') {
        skipped.push({ key: record.key, reason: blob });
        continue;
      }
      const id = `s3-${createHash('sha256')
        .update(`${record.bucket}\u0000${record.key}\u0000${record.versionId ?? ''}\u0000${record.sequencer ?? record.eTag ?? ''}`)
        .digest('hex')
        .slice(0, 40)}`;
      const subject = record.key === '' ? undefined : record.key;
      const sent = await options.messaging.emit(
        contract,
        event as never,
        blob as never,
        { attachmentBlob: blob, id, ...(subject === undefined ? {} : { subject }) } as never,
      );
      emitted.push({ key: record.key, messageId: sent.messageId, blob });
    }
    return { messageId, emitted, skipped, test: false };
  }

  async function poll(): Promise<void> {
    const signal = closing.signal;
    while (!signal.aborted) {
      let messages: Message[];
      try {
        const output = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: options.waitTimeSeconds ?? 20 }),
          { abortSignal: signal },
        );
        messages = output.Messages ?? [];
      } catch (error) {
        if (signal.aborted) return;
        options.onError?.(error, {});
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      for (const message of messages) {
        try {
          const outcome = await handle(message.Body ?? '', message.MessageId);
          await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
          options.onMessage?.(outcome);
        } catch (error) {
          // Left in the queue: visible again after its visibility timeout, then redriven to the DLQ.
          options.onError?.(error, message);
        }
      }
    }
  }

  return {
    start() {
      loop ??= poll();
    },
    handle,
    async close() {
      closing.abort();
      await loop;
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalid('the body is not JSON');
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(detail: string): SwitchboardError {
  return new SwitchboardError('SB_MESSAGE_INVALID', { detail });
}
