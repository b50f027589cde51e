import { createHash } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';

/**
 * How Switchboard topics and groups become SNS topic and SQS queue names. Exported so that teams
 * provisioning with infrastructure-as-code create exactly the names the broker looks for.
 *
 * - SNS topic names: 1–256 characters of `[A-Za-z0-9_-]`, `.fifo` at the end of a FIFO topic.
 * - SQS queue names: 1–80 characters of `[A-Za-z0-9_-]`, `.fifo` at the end of a FIFO queue
 *   (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html).
 *
 * A topic's dots become underscores (`service-b.messages` → `service-b_messages`). When a name had
 * other characters, already had underscores (so that the mapping could collide) or is too long,
 * the readable part is cut and 8 hex digits of its SHA-256 are appended. Queue names always end in
 * such a digest of (prefix, topic, group), since `<topic>--<group>` alone could be read two ways.
 */

const FIFO_SUFFIX = '.fifo';
const TOPIC_MAX = 256;
const QUEUE_MAX = 80;
/** Appended to a group's queue name for its dead-letter queue. */
export const DLQ_SUFFIX = '-dlq';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 8);
}

function sanitize(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** `text` as a name of at most `max` characters, with a digest when the mapping alone is not safe. */
function fit(text: string, max: number, forceDigest: boolean): string {
  const readable = sanitize(text);
  const lossless = !text.includes('_') && readable === text.replace(/\./g, '_');
  if (!forceDigest && lossless && readable.length <= max && readable.length > 0) return readable;
  const tag = digest(text);
  return `${readable.slice(0, max - tag.length - 1)}-${tag}`;
}

export function assertTopic(topic: string): void {
  if (topic.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the topic is empty' });
}

export function assertGroup(group: string): void {
  if (group.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'the group is empty' });
}

/** The SNS topic of a Switchboard topic. */
export function snsTopicName(prefix: string, topic: string, fifo: boolean): string {
  const max = TOPIC_MAX - (fifo ? FIFO_SUFFIX.length : 0);
  return `${fit(`${prefix}${topic}`, max, false)}${fifo ? FIFO_SUFFIX : ''}`;
}

/** The SQS queue of a consumer group on a topic (its dead-letter queue adds {@link DLQ_SUFFIX} before `.fifo`). */
export function sqsQueueName(prefix: string, topic: string, group: string, fifo: boolean): string {
  const max = QUEUE_MAX - DLQ_SUFFIX.length - (fifo ? FIFO_SUFFIX.length : 0);
  const tag = digest(prefix, topic, group);
  const readable = sanitize(`${prefix}${topic}--${group}`).slice(0, max - tag.length - 1);
  return `${readable}-${tag}${fifo ? FIFO_SUFFIX : ''}`;
}

/** The dead-letter queue of a group's queue. */
export function sqsDeadLetterQueueName(queueName: string): string {
  return queueName.endsWith(FIFO_SUFFIX)
    ? `${queueName.slice(0, -FIFO_SUFFIX.length)}${DLQ_SUFFIX}${FIFO_SUFFIX}`
    : `${queueName}${DLQ_SUFFIX}`;
}

/**
 * `MessageGroupId` and `MessageDeduplicationId` take 1–128 characters of `[\x21-\x7E]`
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
 * A value outside that is replaced by `sha256-<hex>` of it, so any ordering key or MessageId works.
 */
export function fifoToken(value: string): string {
  if (value.length > 0 && value.length <= 128 && /^[\x21-\x7e]+$/.test(value)) return value;
  return `sha256-${createHash('sha256').update(value).digest('hex')}`;
}
