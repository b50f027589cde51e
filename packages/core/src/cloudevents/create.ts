import { newMessageId } from '../ids.js';
import type { CloudEvent, CloudEventExtensions } from './event.js';
import { CLOUDEVENTS_SPEC_VERSION } from './event.js';
import { assertCloudEvent } from './validate.js';

export interface CreateCloudEventInput<Data = unknown> {
  readonly type: string;
  readonly source: string;
  readonly data?: Data;
  /** Default: a new MessageId (UUIDv7). */
  readonly id?: string;
  /** Default: now, as an RFC 3339 UTC timestamp. `null` leaves it out. */
  readonly time?: string | Date | null;
  readonly subject?: string;
  /** Default: `application/octet-stream` for `Uint8Array` data, `application/json` for other data. */
  readonly datacontenttype?: string;
  readonly dataschema?: string;
  readonly extensions?: CloudEventExtensions;
}

/**
 * Builds a valid CloudEvent, filling `specversion`, `id`, `time` and `datacontenttype`.
 * Throws `SB_NOT_CLOUDEVENT` with field errors when an attribute is invalid.
 */
export function createCloudEvent<Data = unknown>(input: CreateCloudEventInput<Data>): CloudEvent<Data> {
  const time =
    input.time === null ? undefined : input.time instanceof Date ? input.time.toISOString() : (input.time ?? new Date().toISOString());
  const datacontenttype =
    input.datacontenttype ??
    (input.data === undefined ? undefined : input.data instanceof Uint8Array ? 'application/octet-stream' : 'application/json');
  const event: Record<string, unknown> = {
    specversion: CLOUDEVENTS_SPEC_VERSION,
    id: input.id ?? newMessageId(),
    source: input.source,
    type: input.type,
  };
  if (time !== undefined) event.time = time;
  if (input.subject !== undefined) event.subject = input.subject;
  if (datacontenttype !== undefined) event.datacontenttype = datacontenttype;
  if (input.dataschema !== undefined) event.dataschema = input.dataschema;
  if (input.data !== undefined) event.data = input.data;
  if (input.extensions !== undefined && Object.keys(input.extensions).length > 0) event.extensions = input.extensions;
  assertCloudEvent(event);
  return event as CloudEvent<Data>;
}
