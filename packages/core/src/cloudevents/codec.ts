import { SwitchboardError } from '../errors.js';
import type { HeadersInput } from './binary.js';
import { decodeBinary, encodeBinary, getHeader, hasBinaryAttributes, readsAsStructured } from './binary.js';
import { cloudEventsEssence } from './data.js';
import type { CloudEvent, CloudEventsBinding, CloudEventsMode, DecodeOptions, EncodedCloudEvent } from './event.js';
import { CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE, CLOUDEVENTS_JSON_MEDIA_TYPE } from './event.js';
import { decodeStructured, encodeStructured } from './structured.js';
import { notCloudEvent } from './validate.js';

/**
 * Encodes an event for a transport in the binding's content mode (or `mode`, when given). An event
 * whose `datacontenttype` is itself a CloudEvents format (`application/cloudevents+json`, an event
 * carrying an event) is written in structured mode on bindings whose content type carries
 * `datacontenttype`: in binary mode a receiver would read it as a structured or batched message.
 */
export function encodeCloudEvent(event: CloudEvent, binding: CloudEventsBinding, mode: CloudEventsMode = binding.mode): EncodedCloudEvent {
  return mode === 'binary' && !readsAsStructured(event, binding) ? encodeBinary(event, binding) : encodeStructured(event);
}

/** Which mode a message is in, from its `content-type` and headers; a batch is reported as such. */
export function detectCloudEventsMode(headers: HeadersInput, binding: CloudEventsBinding): CloudEventsMode | 'batch' {
  const contentType = getHeader(headers, 'content-type');
  const essence = contentType === undefined ? undefined : cloudEventsEssence(contentType);
  if (essence !== undefined) {
    if (essence === CLOUDEVENTS_JSON_MEDIA_TYPE) return 'structured';
    if (essence === CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE) return 'batch';
    throw new SwitchboardError('SB_UNSUPPORTED_MEDIA_TYPE', {
      detail: `${essence} is not supported; use ${CLOUDEVENTS_JSON_MEDIA_TYPE} or binary mode`,
    });
  }
  if (hasBinaryAttributes(headers, binding)) return 'binary';
  if (binding.impliedStructured && contentType === undefined) return 'structured';
  throw notCloudEvent(
    [
      {
        pointer: '/specversion',
        message: `no ${binding.prefix || 'specversion'}${binding.prefix ? 'specversion ' : ' '}header and the content type is not ${CLOUDEVENTS_JSON_MEDIA_TYPE}`,
      },
    ],
    'the message is neither a binary-mode nor a structured-mode CloudEvent',
  );
}

/**
 * Decodes one event from a transport message, in whichever mode it came. Errors:
 * `SB_UNSUPPORTED_MEDIA_TYPE` (another CloudEvents format, a batch, or a non-UTF-8 charset),
 * `SB_MALFORMED_JSON`, `SB_JSON_TOO_DEEP` (nested deeper than `JSON_MAX_DEPTH`), `SB_NOT_CLOUDEVENT`
 * (with field errors).
 */
export function decodeCloudEvent(
  headers: HeadersInput,
  body: Uint8Array,
  binding: CloudEventsBinding,
  options?: DecodeOptions,
): CloudEvent {
  const mode = detectCloudEventsMode(headers, binding);
  if (mode === 'binary') return decodeBinary(headers, body, binding, options);
  if (mode === 'structured') return decodeStructured(body, getHeader(headers, 'content-type'), options);
  throw new SwitchboardError('SB_UNSUPPORTED_MEDIA_TYPE', { detail: `batched mode is for HTTP only on the ${binding.name} binding` });
}
