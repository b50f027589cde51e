import { createHash } from 'node:crypto';
import type { CloudEvent, CloudEventsBinding, Delivery } from '@switchboard/core';
import { CLOUDEVENT_ID_MAX_BYTES, decodeCloudEvent, identityProblems, SwitchboardError } from '@switchboard/core';

/**
 * Reads the CloudEvent of a delivery, once, in whichever mode and form the binding allows. Throws
 * `SB_NOT_CLOUDEVENT`, `SB_MALFORMED_JSON` or `SB_UNSUPPORTED_MEDIA_TYPE` for bytes that are not
 * one, and `SB_MESSAGE_INVALID` for an `id` or `source` over the identity limits (nothing can be
 * stored under it).
 */
export function decodeDelivery(delivery: Delivery, binding: CloudEventsBinding): CloudEvent {
  const event = decodeCloudEvent(delivery.headers, delivery.body, binding);
  checkIdentity(event);
  return event;
}

/** `SB_MESSAGE_INVALID` when the event's `id` or `source` is over its limit. */
export function checkIdentity(event: CloudEvent): void {
  if (event.id.length + event.source.length <= 256) return;
  const problems = identityProblems(event);
  if (problems.length > 0) {
    throw new SwitchboardError('SB_MESSAGE_INVALID', { detail: 'the event id or source is over its length limit', errors: problems });
  }
}

/**
 * The MessageId a dead letter of unreadable bytes is filed under: the transport id when the
 * engine had one, else a digest of the headers and body, so a redelivery of the same bytes adds to
 * the same entry.
 */
export function undecodableId(delivery: Delivery): string {
  if (delivery.id !== '' && Buffer.byteLength(delivery.id, 'utf8') <= CLOUDEVENT_ID_MAX_BYTES) return delivery.id;
  return bytesId(delivery);
}

/** `sha256:` and the digest of a delivery's headers and body: an id nobody can choose for the bytes. */
export function bytesId(delivery: Delivery): string {
  const hash = createHash('sha256');
  for (const name of Object.keys(delivery.headers).sort()) hash.update(`${name}:${delivery.headers[name]}\n`);
  hash.update(delivery.body);
  return `sha256:${hash.digest('hex')}`;
}
