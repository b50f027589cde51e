import type { FieldError } from '../standard-schema.js';

/**
 * Longest CloudEvent `id` Switchboard takes, in UTF-8 bytes. The spec sets no limit; every store
 * keys its inbox, receipts and dead letters on `(source, id)`, so both are bounded: an id or source
 * over its limit is refused at the edge (a dead letter with reason `invalid` on the broker path,
 * `400` problem+json over HTTP, `SB_VALIDATION` on publish), never stored.
 */
export const CLOUDEVENT_ID_MAX_BYTES = 512;
/** Longest CloudEvent `source` Switchboard takes, in UTF-8 bytes (see {@link CLOUDEVENT_ID_MAX_BYTES}). */
export const CLOUDEVENT_SOURCE_MAX_BYTES = 1024;

/** UTF-8 length of `value`, or 0 when it certainly fits in `limit` (a UTF-16 code unit is at most 3 bytes). */
function overLimit(value: string, limit: number): number {
  if (value.length * 3 <= limit) return 0;
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > limit ? bytes : 0;
}

/** Field errors for an `id` or `source` over its limit (empty when both fit). */
export function identityProblems(event: { readonly id: string; readonly source: string }): FieldError[] {
  const problems: FieldError[] = [];
  const idBytes = overLimit(event.id, CLOUDEVENT_ID_MAX_BYTES);
  if (idBytes > 0) {
    problems.push({ pointer: '/id', message: `id is ${idBytes} bytes; at most ${CLOUDEVENT_ID_MAX_BYTES} are accepted` });
  }
  const sourceBytes = overLimit(event.source, CLOUDEVENT_SOURCE_MAX_BYTES);
  if (sourceBytes > 0) {
    problems.push({ pointer: '/source', message: `source is ${sourceBytes} bytes; at most ${CLOUDEVENT_SOURCE_MAX_BYTES} are accepted` });
  }
  return problems;
}
