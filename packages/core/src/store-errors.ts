import { CLOUDEVENT_ID_MAX_BYTES, CLOUDEVENT_SOURCE_MAX_BYTES, identityProblems } from './cloudevents/identity.js';
import { SwitchboardError } from './errors.js';
import type { FieldError } from './standard-schema.js';

/**
 * `SB_STORE_REFUSED`: the store cannot hold a value of this request (too long, bytes the engine
 * refuses, a constraint). Nothing was written, and the same request fails the same way every time,
 * so callers must not retry it: the messaging layer dead-letters the message with reason `store`.
 * Failures of the store as a whole (unreachable, timed out, locked, out of resources) are
 * `SB_STORE_UNAVAILABLE` instead.
 */
export function storeRefused(
  detail: string,
  options: { readonly cause?: unknown; readonly errors?: readonly FieldError[] } = {},
): SwitchboardError {
  return new SwitchboardError('SB_STORE_REFUSED', {
    detail,
    ...(options.cause === undefined ? {} : { cause: options.cause }),
    ...(options.errors === undefined ? {} : { errors: options.errors }),
  });
}

/**
 * Refuses an event identity the stores do not take, before anything is written: a MessageId over
 * `CLOUDEVENT_ID_MAX_BYTES` or a source over `CLOUDEVENT_SOURCE_MAX_BYTES` (UTF-8 bytes) fails with
 * `SB_STORE_REFUSED` and field errors `/id`, `/source`. Costs two comparisons for the usual short ids.
 */
export function assertStorableIdentity(store: string, key: { readonly messageId: string; readonly source: string }): void {
  if (typeof key.messageId !== 'string' || typeof key.source !== 'string') {
    throw new TypeError(`a ${store} store key needs a string messageId and source`);
  }
  if (key.messageId.length * 3 <= CLOUDEVENT_ID_MAX_BYTES && key.source.length * 3 <= CLOUDEVENT_SOURCE_MAX_BYTES) return;
  const errors = identityProblems({ id: key.messageId, source: key.source });
  if (errors.length === 0) return;
  throw storeRefused(
    `the ${store} store keeps MessageIds of at most ${CLOUDEVENT_ID_MAX_BYTES} and sources of at most ${CLOUDEVENT_SOURCE_MAX_BYTES} UTF-8 bytes`,
    { errors },
  );
}
