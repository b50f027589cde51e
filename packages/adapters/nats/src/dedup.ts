import { createHash } from 'node:crypto';
import type { OutgoingMessage } from '@switchboard/core';

/**
 * JetStream drops a publish whose `Nats-Msg-Id` it has seen within the stream's duplicate window.
 * A MessageId alone is not an event's identity (CloudEvents: `source` + `id`), so with the id as
 * `Nats-Msg-Id` an event of another source that happens to use the same id — or a forgery
 * published first under a genuine message's id — would make the genuine publish vanish before any
 * consumer or signature check saw it. The `Nats-Msg-Id` is therefore the MessageId followed by
 * `~d` and a digest of what else names the event: its `source` and signature headers (binary
 * mode) or the whole document (structured mode). A republish of the same message (a retry, the
 * outbox relay's stored bytes) keeps its `Nats-Msg-Id`; another event with the same id does not.
 */
export function deduplicationId(message: OutgoingMessage): string {
  const headers = message.headers;
  const source = headers['ce-source'];
  const hash = createHash('sha256');
  if (source !== undefined) {
    hash.update(source);
    hash.update('\n');
    hash.update(headers['ce-sbsignature'] ?? '');
  } else {
    hash.update(message.body);
  }
  return `${message.id}${DIGEST_MARK}${hash.digest('base64url').slice(0, DIGEST_LENGTH)}`;
}

const DIGEST_MARK = '~d';
const DIGEST_LENGTH = 22;
const DIGEST_SUFFIX = /~d[A-Za-z0-9_-]{22}$/;

/** The MessageId a `Nats-Msg-Id` written by {@link deduplicationId} was made from (any other id as it is). */
export function messageIdOf(natsMsgId: string): string {
  return DIGEST_SUFFIX.test(natsMsgId) ? natsMsgId.slice(0, -(DIGEST_MARK.length + DIGEST_LENGTH)) : natsMsgId;
}
