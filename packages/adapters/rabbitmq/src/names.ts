import { SwitchboardError } from '@switchboard/core';

/** Topics are routing keys and name parts: no wildcards, no spaces, no `@` (the queue-name separator). */
export function assertTopic(topic: string): void {
  if (topic.length === 0 || /[\s*#@]/.test(topic)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `topic ${JSON.stringify(topic)} must be non-empty without spaces, '*', '#' or '@'`,
    });
  }
}

export function assertGroup(group: string): void {
  if (group.length === 0 || /\s/.test(group)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `group ${JSON.stringify(group)} must be non-empty and contain no spaces` });
  }
}

export function exchangeName(prefix: string, topic: string): string {
  return `${prefix}${topic}`;
}

export function groupQueueName(prefix: string, topic: string, group: string): string {
  return `${prefix}${topic}@${group}`;
}

export function delayQueueName(groupQueue: string, bucketMs: number): string {
  return `${groupQueue}~delay-${bucketMs}ms`;
}

/**
 * Delays are rounded up to a ladder of quarter powers of two (at most ~19% longer than asked), so a
 * group needs few delay queues even when the delays are jittered.
 */
export function delayBucket(delayMs: number): number {
  const capped = Math.min(Math.max(1, delayMs), 2 ** 31);
  return Math.ceil(2 ** (Math.ceil(4 * Math.log2(capped) - 1e-9) / 4));
}
