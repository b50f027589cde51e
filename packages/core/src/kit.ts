/**
 * `@switchboard/core/kit`: the internal kit that Switchboard's adapters and sibling packages share
 * (as nats.js keeps `internal_mod.ts` apart from its curated `mod.ts`). Not for applications: what
 * is here may change between minor versions.
 *
 * - Subscriptions: `DeliveryTracker` + `TrackedDelivery` (in-flight slots, unsettled set, ack
 *   deadlines, handler runs, drain) for at-least-once engines; `PushSubscription` +
 *   `AtMostOnceDelivery` for at-most-once push transports; `resolveSubscribeOptions`.
 * - Errors, options and timing: `brokerErrors`, `assertMessageSize`, `positiveInteger`, `idle`, `sleep`,
 *   `describeError`.
 * - Request/reply: `requestsOf` (the engine's own, or `QueueRequests` over publish/subscribe),
 *   `PendingReplies` (waiting requests with timeout, abort and close), the request headers.
 * - Stores: the receipt, dead-letter, job, blob and outbox rules every store applies the same way, and
 *   the refusal of values a store cannot hold (`assertStorableIdentity`, `storeRefused`).
 */
export { AckDeadlines } from './ack-deadlines.js';
export { parseRetryAfter, sleep } from './backoff.js';
export type { ExpectedBlob } from './blobs.js';
export {
  assertBlobKey,
  blobChunks,
  blobUri,
  isBlobKey,
  missingBlob,
  parseBlobUri,
  readAllBytes,
  refuseDataref,
  verifyBlobStream,
  withLaterExpiry,
} from './blobs.js';
export { atMostOnceCapabilities, queueCapabilities, resolveSubscribeOptions } from './broker.js';
export type { BrokerErrorRules, BrokerErrors } from './broker-errors.js';
export { assertMessageSize, brokerErrors, idle } from './broker-errors.js';
export { BrokerLifecycle } from './broker-lifecycle.js';
export {
  isBase64,
  isExtensionName,
  stringProblem,
  timestampProblem,
  uriProblem,
  uriReferenceProblem,
} from './cloudevents/attribute-types.js';
export { attributePrefix, getHeader, hasBinaryAttributes } from './cloudevents/binary.js';
export type { DataKind } from './cloudevents/data.js';
export { dataKind } from './cloudevents/data.js';
export { attributeToString, percentDecodeHeaderValue, percentEncodeHeaderValue } from './cloudevents/header-value.js';
export type { MediaType } from './cloudevents/media-type.js';
export { parseMediaType } from './cloudevents/media-type.js';
export { notCloudEvent } from './cloudevents/validate.js';
export { deadLetterStatusAt, mergeAttempts } from './dead-letters.js';
export type { DeliveryFields, DeliveryTrackerOptions } from './delivery-tracker.js';
export { DeliveryTracker, TrackedDelivery } from './delivery-tracker.js';
export { describeError } from './errors.js';
export {
  IDEMPOTENCY_FULL_RETRY_AFTER_MS,
  idempotencyRecordBytes,
  idempotencyScope,
  resolveIdempotencyBounds,
} from './idempotency.js';
export { newSecretId, randomHex } from './ids.js';
export { canceledProblem, JobWaiters, jobStoreDefaults, leaseExpiredProblem, storeUnavailable } from './jobs.js';
export { jsonNestsDeeperThan, jsonTooDeep } from './json.js';
export { positiveInteger } from './option-checks.js';
export { assertOutboxMessage } from './outbox.js';
export { plainHeaders, plainHeadersFromJson } from './plain-layout.js';
export type { DroppedDelivery, DropReason, PushSubscriptionConfig, ReceivedFields } from './push-subscription.js';
export { AtMostOnceDelivery, PushSubscription } from './push-subscription.js';
export {
  applyReceiptClaims,
  applyReceiptUpdates,
  decideClaim,
  decodeListCursor,
  encodeListCursor,
  listPageLimit,
  mergeReceipt,
  reopenReceipt,
} from './receipts.js';
export {
  checkRequestTimeout,
  PendingReplies,
  QueueRequests,
  REQUEST_HEADERS,
  readDeadline,
  replyTimeout,
  requestAborted,
  requestsOf,
  requestTopic,
  withoutRequestHeaders,
} from './requests.js';
export type { ItemOutcome } from './round-trip-batch.js';
export { RoundTripBatch } from './round-trip-batch.js';
export { issuePointer, schemaPropertyNames, validate, validateAsync } from './standard-schema.js';
export { assertStorableIdentity, storeRefused } from './store-errors.js';
export { childTraceparent, newSpanId, newTraceId } from './trace.js';
