/**
 * `@switchboard/core`: what users of Switchboard import — contracts, the error registry, the
 * CloudEvents envelope and its codecs, and the interfaces every pattern is built on (broker, job,
 * receipt, dead-letter, blob and outbox stores). The helpers adapters and sibling packages share
 * live in `@switchboard/core/kit`.
 */
export type { BackoffOptions } from './backoff.js';
export { backoffDelay } from './backoff.js';
export * from './blob-events.js';
export type { BlobInfo, BlobObject, BlobPutOptions, BlobSource, BlobStore } from './blobs.js';
export type {
  Broker,
  BrokerCapabilities,
  BrokerRequests,
  Delivery,
  DeliveryGuarantee,
  DeliveryHandler,
  Headers,
  Ordering,
  OutgoingMessage,
  ReplyMessage,
  RequestDelivery,
  RequestHandler,
  RequestOptions,
  SubscribeOptions,
  Subscription,
} from './broker.js';
export { DEFAULT_ACK_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT } from './broker.js';
export * from './cloudevents.js';
export * from './contract.js';
export type {
  DeadLetter,
  DeadLetterAttempt,
  DeadLetterFilter,
  DeadLetterListOptions,
  DeadLetterReason,
  DeadLetterStatus,
  DeadLetterStore,
  DeadLetterSummary,
  DeadLetterTakeOptions,
  NewDeadLetter,
} from './dead-letters.js';
export * from './diagnostics.js';
export type { ErrorCode, ErrorEntry, ProblemDetails, SwitchboardErrorOptions } from './errors.js';
export {
  errorFromProblem,
  errorRegistry,
  isSwitchboardError,
  OperationError,
  operationProblemType,
  PermanentError,
  problemType,
  RetryLaterError,
  SwitchboardError,
} from './errors.js';
export type {
  IdempotencyBegin,
  IdempotencyBeginResult,
  IdempotencyBounds,
  IdempotencyLock,
  IdempotencyStore,
  StoredResponse,
} from './idempotency.js';
export { DEFAULT_IDEMPOTENCY_MAX_BYTES, DEFAULT_IDEMPOTENCY_MAX_ENTRIES } from './idempotency.js';
export { newMessageId } from './ids.js';
export type {
  CancelResult,
  ClaimOptions,
  CreateJobInput,
  CreateJobResult,
  FailOptions,
  FinishedJobStatus,
  JobCallback,
  JobClaim,
  JobCounts,
  JobLease,
  JobLookup,
  JobRecord,
  JobStatus,
  JobStore,
  JobStoreOptions,
  LeaseState,
  ReleaseOutcome,
  SettleOutcome,
} from './jobs.js';
export { isFinishedStatus } from './jobs.js';
export { JSON_MAX_DEPTH } from './json.js';
export type { OutboxClaimOptions, OutboxEntry, OutboxMessage, OutboxRelay, OutboxRelayOptions, OutboxStore } from './outbox.js';
export { createOutboxRelay } from './outbox.js';
export type {
  ListPage,
  Receipt,
  ReceiptClaim,
  ReceiptClaimOutcome,
  ReceiptClaimResult,
  ReceiptKey,
  ReceiptListFilter,
  ReceiptPurgeOptions,
  ReceiptState,
  ReceiptStore,
  ReceiptUpdate,
  RecordOutcome,
} from './receipts.js';
export { isFinalReceiptState, receiptStates } from './receipts.js';
export type {
  MessageSigner,
  MessageSigning,
  MessageVerifier,
  SignatureProblem,
  SigningAlgorithm,
  SigningKey,
  SigningOptions,
  TrustedSources,
  VerificationKey,
} from './signing.js';
export {
  canonicalEvent,
  canonicalJson,
  createMessageSigning,
  createSigner,
  createVerifier,
  dataDigest,
  SIGNATURE_ATTRIBUTE,
  signatureError,
  signEvent,
} from './signing.js';
export type { FieldError, InferInput, InferOutput, StandardSchemaV1, ValidationResult } from './standard-schema.js';
export type { TraceCarrier, TraceContext, TraceHeaderValue, TraceParent, TracestateMember } from './trace.js';
export {
  continueTrace,
  currentTrace,
  formatTraceparent,
  formatTracestate,
  normalizeTracestate,
  parseTraceparent,
  parseTracestate,
  runWithTrace,
  setAmbientTrace,
  TRACE_FLAG_RANDOM,
  TRACE_FLAG_SAMPLED,
  TRACESTATE_MAX_LENGTH,
  TRACESTATE_MAX_MEMBERS,
  traceHeaders,
} from './trace.js';
