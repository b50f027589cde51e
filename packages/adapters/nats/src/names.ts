import { createHash } from 'node:crypto';
import { SwitchboardError } from '@switchboard/core';

const TOKEN_UNSAFE = /[^A-Za-z0-9_-]/g;

/**
 * A JetStream stream or consumer name for an arbitrary string: kept as is when it is already a
 * safe token, otherwise unsafe characters become `_` and a short hash of the original keeps two
 * different inputs from colliding.
 */
export function safeToken(value: string): string {
  const cleaned = value.replace(TOKEN_UNSAFE, '_');
  if (cleaned === value) return value;
  return `${cleaned}_${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
}

/** Topics become subject tokens: no whitespace, no wildcards, no empty tokens. */
export function assertTopic(topic: string): void {
  if (topic.length === 0 || /[\s*>]/.test(topic) || topic.split('.').some((token) => token.length === 0)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `topic ${JSON.stringify(topic)} is not a valid NATS subject suffix (no spaces, '*', '>' or empty tokens)`,
    });
  }
}

export function assertGroup(group: string): void {
  if (group.length === 0 || /\s/.test(group)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `group ${JSON.stringify(group)} must be non-empty and contain no spaces` });
  }
}

export interface TopicNames {
  readonly stream: string;
  readonly subject: string;
}

/** The broker's `prefix` is the first subject token(s) of every subject: the same rule as a topic. */
export function assertPrefix(prefix: string): void {
  if (prefix.length === 0 || /[\s*>]/.test(prefix) || prefix.split('.').some((token) => token.length === 0)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `prefix ${JSON.stringify(prefix)} is not a valid NATS subject prefix (no spaces, '*', '>' or empty tokens)`,
    });
  }
}

/**
 * A topic's subject `<prefix>.<topic>` and stream `<PREFIX>_<topic>`: the prefix upper-cased (so
 * the default `sb` keeps the streams `SB_<topic>` it always had), both as safe tokens.
 */
export function topicNames(prefix: string, topic: string): TopicNames {
  assertTopic(topic);
  return { stream: `${streamPrefix(prefix)}_${safeToken(topic)}`, subject: `${prefix}.${topic}` };
}

/** The stream-name part of a prefix: upper case, as a safe token. */
export function streamPrefix(prefix: string): string {
  return safeToken(prefix.toUpperCase());
}
