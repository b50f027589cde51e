import { PublishBatchCommand, type PublishBatchRequestEntry, type SNSClient } from '@aws-sdk/client-sns';
import type { OutgoingMessage } from '@switchboard/core';
import { backoffDelay, SwitchboardError } from '@switchboard/core';
import { describeError, type ItemOutcome, idle, RoundTripBatch } from '@switchboard/core/kit';
import { isNotFound, isTransient, toBrokerError } from './errors.js';
import { fifoToken } from './names.js';
import type { S3BlobStore } from './s3-blob-store.js';
import type { Topology } from './topology.js';
import { encodeMessage, MAX_ATTRIBUTES, pointerText, SNS_MAX_BYTES } from './wire.js';

/** What SNS said about one published message. */
export interface PublishReceipt {
  /** The transport id (`OutgoingMessage.id`; the CloudEvent `id` on a first publish). */
  readonly id: string;
  readonly topic: string;
  /** SNS's MessageId for it (a subscriber with raw delivery never sees it; the envelope carries it). */
  readonly snsMessageId: string;
  /** FIFO topics: the sequence number SNS gave it. */
  readonly sequenceNumber?: string;
}

/** The AWS extended-client convention: bodies over a threshold go to S3, the message carries a pointer. */
export interface PayloadOffload {
  readonly store: S3BlobStore;
  /** Messages (body and attributes) bigger than this go to S3. Default and most: 262 144 bytes (SNS's limit). */
  readonly thresholdBytes: number;
  /** Largest body taken, and read back from a pointer. */
  readonly maxBytes: number;
  /** How long a stored body is kept: longer than any queue keeps the message (SQS keeps at most 14 days). */
  readonly retentionMs: number;
}

export interface PublisherOptions {
  readonly offload: PayloadOffload | undefined;
  readonly maxMessageBytes: number;
  readonly publishTimeoutMs: number;
  /** `PublishBatch` calls in flight at once for one standard topic (a FIFO topic's go one after another, to keep their order). */
  readonly concurrency: number;
}

interface Prepared {
  readonly message: OutgoingMessage;
  readonly entry: Omit<PublishBatchRequestEntry, 'Id'>;
  readonly size: number;
}

/** Entries of one `PublishBatch`. */
const BATCH = 10;

/**
 * Publishes through SNS `PublishBatch`: each message is encoded (see `wire.ts`), checked against
 * SNS's limits that the emulator does not enforce (256 KiB counting the attributes, at most 10
 * attributes) and, over the limit, stored in S3 when offloading is on, else refused with
 * `SB_MESSAGE_TOO_LARGE`, never truncated. Batches hold at most 10 entries and 256 KiB in all, with
 * positional ids. Single publishes that arrive during one round trip share a batch. The answer's
 * `Failed` list is always read: entries SNS failed on its side are retried within the publish
 * timeout, others fail alone. FIFO topics: `MessageGroupId` = the ordering key (else the message
 * id), `MessageDeduplicationId` = `OutgoingMessage.id`, so a replay (a new id) is not dropped as a
 * duplicate and a retried publish is.
 */
export class SnsPublisher {
  readonly #sns: SNSClient;
  readonly #topology: Topology;
  readonly #options: PublisherOptions;
  readonly #coalescer: RoundTripBatch<Prepared, PublishReceipt>;

  constructor(sns: SNSClient, topology: Topology, options: PublisherOptions) {
    this.#sns = sns;
    this.#topology = topology;
    this.#options = options;
    this.#coalescer = new RoundTripBatch((items) => this.#publishPrepared(items));
  }

  async publish(message: OutgoingMessage): Promise<PublishReceipt> {
    return this.#coalescer.add(await this.#prepare(message));
  }

  async publishBatch(messages: readonly OutgoingMessage[]): Promise<PublishReceipt[]> {
    const prepared = await Promise.all(messages.map((message) => this.#prepare(message)));
    const outcomes = await this.#publishPrepared(prepared);
    const failed = outcomes.find((outcome) => !outcome.ok);
    if (failed !== undefined && !failed.ok) throw failed.error;
    return outcomes.map((outcome) => (outcome as { value: PublishReceipt }).value);
  }

  async #prepare(message: OutgoingMessage): Promise<Prepared> {
    if (message.topic.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the topic is empty' });
    const bytes = message.body.byteLength;
    if (bytes > this.#options.maxMessageBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
        detail: `the message body is ${bytes} bytes, over the limit of ${this.#options.maxMessageBytes} bytes`,
      });
    }
    let encoded = encodeMessage(message);
    const offload = this.#options.offload;
    if (encoded.size > (offload?.thresholdBytes ?? SNS_MAX_BYTES)) {
      if (offload === undefined) {
        throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
          detail:
            `the message is ${encoded.size} bytes with its attributes, over SNS's limit of ${SNS_MAX_BYTES}; ` +
            'send large data by claim check, or turn on payload offloading to S3',
        });
      }
      const info = await offload.store.put(message.body, {
        mediaType: message.headers['content-type'] ?? 'application/octet-stream',
        expiresAt: Date.now() + offload.retentionMs,
      });
      encoded = encodeMessage(message, {
        pointer: { text: pointerText(offload.store.bucket, offload.store.objectKey(info.key)), size: bytes },
      });
      if (encoded.size > SNS_MAX_BYTES) {
        throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', {
          detail: `the message attributes alone are ${encoded.size} bytes, over SNS's limit of ${SNS_MAX_BYTES}`,
        });
      }
    }
    if (Object.keys(encoded.attributes).length > MAX_ATTRIBUTES) {
      // The encoder never writes more; this guards the rule SNS enforces by dropping the message.
      throw new SwitchboardError('SB_INTERNAL', { detail: `more than ${MAX_ATTRIBUTES} message attributes` });
    }
    const fifo = this.#topology.isFifo(message.topic);
    return {
      message,
      size: encoded.size,
      entry: {
        Message: encoded.body,
        MessageAttributes: encoded.attributes,
        ...(fifo ? { MessageGroupId: fifoToken(message.key ?? message.id), MessageDeduplicationId: fifoToken(message.id) } : {}),
      },
    };
  }

  /** Publishes prepared messages, grouped by topic, in batches of at most 10 entries and 256 KiB. */
  async #publishPrepared(items: readonly Prepared[]): Promise<ItemOutcome<PublishReceipt>[]> {
    const outcomes: ItemOutcome<PublishReceipt>[] = new Array(items.length);
    const byTopic = new Map<string, number[]>();
    items.forEach((item, index) => {
      const list = byTopic.get(item.message.topic);
      if (list === undefined) byTopic.set(item.message.topic, [index]);
      else list.push(index);
    });
    await Promise.all(
      [...byTopic].map(async ([topic, indexes]) => {
        const chunks: number[][] = [];
        let chunk: number[] = [];
        let size = 0;
        for (const index of indexes) {
          const item = items[index]!;
          if (chunk.length === BATCH || (chunk.length > 0 && size + item.size > SNS_MAX_BYTES)) {
            chunks.push(chunk);
            chunk = [];
            size = 0;
          }
          chunk.push(index);
          size += item.size;
        }
        if (chunk.length > 0) chunks.push(chunk);
        const send = async (part: number[]) => {
          const results = await this.#sendChunk(
            topic,
            part.map((index) => items[index]!),
          );
          part.forEach((index, position) => {
            outcomes[index] = results[position]!;
          });
        };
        if (this.#topology.isFifo(topic)) {
          for (const part of chunks) await send(part);
        } else {
          let next = 0;
          const worker = async () => {
            while (next < chunks.length) await send(chunks[next++]!);
          };
          await Promise.all(Array.from({ length: Math.min(chunks.length, this.#options.concurrency) }, worker));
        }
      }),
    );
    return outcomes;
  }

  /** One `PublishBatch` (up to 10 entries), with retries of what failed on SNS's side, until the publish timeout. */
  async #sendChunk(topic: string, items: readonly Prepared[]): Promise<ItemOutcome<PublishReceipt>[]> {
    const outcomes: (ItemOutcome<PublishReceipt> | undefined)[] = new Array(items.length).fill(undefined);
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    let pending = items.map((_, index) => index);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const retry: number[] = [];
      let topicArn: string;
      try {
        topicArn = await this.#topology.topicArn(topic);
        const answer = await this.#sns.send(
          new PublishBatchCommand({
            TopicArn: topicArn,
            PublishBatchRequestEntries: pending.map((index, position) => ({ Id: String(position), ...items[index]!.entry })),
          }),
        );
        for (const entry of answer.Successful ?? []) {
          const index = pending[Number(entry.Id)];
          if (index === undefined) continue;
          outcomes[index] = {
            ok: true,
            value: {
              id: items[index]!.message.id,
              topic,
              snsMessageId: entry.MessageId ?? '',
              ...(entry.SequenceNumber === undefined ? {} : { sequenceNumber: entry.SequenceNumber }),
            },
          };
        }
        for (const entry of answer.Failed ?? []) {
          const index = pending[Number(entry.Id)];
          if (index === undefined) continue;
          if (entry.SenderFault !== true) retry.push(index);
          else {
            outcomes[index] = {
              ok: false,
              error: new SwitchboardError(
                /too\s*long|too\s*large/i.test(`${entry.Code} ${entry.Message}`) ? 'SB_MESSAGE_TOO_LARGE' : 'SB_BROKER_UNAVAILABLE',
                {
                  detail: `SNS refused a message for ${topic}: ${entry.Code}: ${entry.Message ?? ''}`,
                },
              ),
            };
          }
        }
        for (const index of pending) if (outcomes[index] === undefined && !retry.includes(index)) retry.push(index);
      } catch (error) {
        if (isNotFound(error)) {
          // The topic is gone (deleted, or an emulator restarted empty): look it up, or create it, again.
          this.#topology.forget(topic);
        }
        const last = Date.now() >= deadline || !(isTransient(error) || isNotFound(error));
        if (last) {
          const failure = toBrokerError(error, `publish to ${topic}`);
          for (const index of pending) outcomes[index] = { ok: false, error: failure };
          break;
        }
        retry.push(...pending);
      }
      pending = retry;
      if (pending.length === 0) break;
      if (Date.now() >= deadline) {
        for (const index of pending) {
          outcomes[index] = {
            ok: false,
            error: new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `publish to ${topic}: SNS did not take the message in time` }),
          };
        }
        break;
      }
      await idle(Math.min(backoffDelay(attempt, { baseMs: 50, maxMs: 2000, jitter: 'equal' }), Math.max(0, deadline - Date.now())));
    }
    return outcomes.map(
      (outcome) => outcome ?? { ok: false, error: new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: describeError('no answer') }) },
    );
  }
}
