/** CloudEvents 1.0: the envelope of every message and event, its validation and its codecs. */
export type { DataHash } from './cloudevents/attribute-types.js';
export { formatDataHash, parseDataHash } from './cloudevents/attribute-types.js';
export type { HeadersInput } from './cloudevents/binary.js';
export { decodeBinary, encodeBinary } from './cloudevents/binary.js';
export { decodeCloudEvent, detectCloudEventsMode, encodeCloudEvent } from './cloudevents/codec.js';
export type { CreateCloudEventInput } from './cloudevents/create.js';
export { createCloudEvent } from './cloudevents/create.js';
export type {
  CloudEvent,
  CloudEventAttributeType,
  CloudEventAttributeValue,
  CloudEventExtensions,
  CloudEventsBinding,
  CloudEventsMode,
  DecodeOptions,
  EncodedCloudEvent,
} from './cloudevents/event.js';
export {
  CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE,
  CLOUDEVENTS_CORE_ATTRIBUTES,
  CLOUDEVENTS_JSON_MEDIA_TYPE,
  CLOUDEVENTS_RESERVED_NAMES,
  CLOUDEVENTS_SPEC_VERSION,
  cloudEventsBindings,
  SWITCHBOARD_EXTENSION_TYPES,
  withMode,
} from './cloudevents/event.js';
export type { CloudEventToHttpOptions, HeadersLike, HttpCloudEvents } from './cloudevents/http.js';
export { cloudEventFromHttp, cloudEventToHttp } from './cloudevents/http.js';
export { CLOUDEVENT_ID_MAX_BYTES, CLOUDEVENT_SOURCE_MAX_BYTES, identityProblems } from './cloudevents/identity.js';
export type { JsonCloudEvent } from './cloudevents/structured.js';
export {
  decodeBatch,
  decodeStructured,
  encodeBatch,
  encodeStructured,
  fromJsonCloudEvent,
  toJsonCloudEvent,
} from './cloudevents/structured.js';
export type { ValidateCloudEventOptions } from './cloudevents/validate.js';
export { assertCloudEvent, validateCloudEvent } from './cloudevents/validate.js';
