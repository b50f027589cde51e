/** CloudEvents 1.0: the envelope of every message and event, its validation and its codecs. */
export type { DataHash } from './cloudevents/attribute-types.js';
export {
  formatDataHash,
  isExtensionName,
  parseDataHash,
  timestampProblem,
  uriProblem,
  uriReferenceProblem,
} from './cloudevents/attribute-types.js';
export type { HeadersInput } from './cloudevents/binary.js';
export { decodeBinary, encodeBinary } from './cloudevents/binary.js';
export type { CloudEventsMode } from './cloudevents/codec.js';
export { decodeCloudEvent, detectCloudEventsMode, encodeCloudEvent } from './cloudevents/codec.js';
export type { CreateCloudEventInput } from './cloudevents/create.js';
export { createCloudEvent } from './cloudevents/create.js';
export type { DataKind } from './cloudevents/data.js';
export { dataKind } from './cloudevents/data.js';
export type {
  CloudEvent,
  CloudEventAttributeType,
  CloudEventAttributeValue,
  CloudEventExtensions,
  CloudEventsBinding,
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
} from './cloudevents/event.js';
export { percentDecodeHeaderValue, percentEncodeHeaderValue } from './cloudevents/header-value.js';
export type { CloudEventToHttpOptions, HeadersLike, HttpCloudEvents } from './cloudevents/http.js';
export { cloudEventFromHttp, cloudEventToHttp } from './cloudevents/http.js';
export type { MediaType } from './cloudevents/media-type.js';
export { parseMediaType } from './cloudevents/media-type.js';
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
