import type { Readable } from 'node:stream';
import type {
  AnyContract,
  BackoffOptions,
  BlobInfo,
  BlobSource,
  CloudEvent,
  EventData,
  EventInput,
  EventName,
  MessageData,
  StandardSchemaV1,
} from '@switchboard/core';

/** What every publish resolves to, once the broker confirmed it. */
export interface Sent {
  /** The MessageId (CloudEvents `id`): ask the receiver for its receipt with it. */
  readonly messageId: string;
}

export interface AttachmentOptions {
  /** Bytes or a stream, stored content-addressed in the blob store; the event carries `dataref` and the hash. */
  readonly attachment?: BlobSource;
  /** Media type of the attachment. Default `application/octet-stream`. */
  readonly attachmentType?: string;
  /** When the stored attachment may be deleted (epoch ms). Default: `claimCheck.expiresInMs` from now, or never. */
  readonly attachmentExpiresAt?: number;
  /**
   * A blob already stored (what `BlobStore.put` answered), attached by reference: the event carries
   * its `dataref`, hash, size and media type, and nothing is stored again. Receivers must have the
   * store among their `blobs`. Not together with `attachment`.
   */
  readonly attachmentBlob?: BlobInfo;
}

export interface PublishOptions extends AttachmentOptions {
  /** Ordering key: same-key messages are delivered in order where the broker supports it. */
  readonly key?: string;
  /** CloudEvents `subject`. */
  readonly subject?: string;
  /** The caller's W3C `traceparent`: the message continues its trace (a new one is started otherwise). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** A MessageId of your own (UUIDv7 from `newMessageId()` recommended); default a new one. */
  readonly id?: string;
}

/** Arguments of `emit` after the event name: data only where the contract declares it. */
export type EmitArgs<C extends AnyContract, K extends EventName<C>> = C['events'][K]['data'] extends StandardSchemaV1
  ? [data: EventInput<C, K>, options?: PublishOptions]
  : [data?: undefined, options?: PublishOptions];

/** A claim-checked attachment, as the consumer sees it before reading it. */
export interface AttachmentInfo {
  /** The `dataref` URI. */
  readonly uri: string;
  /** Lowercase hex SHA-256 the bytes must have. */
  readonly sha256: string;
  readonly size?: number;
  readonly mediaType: string;
  /** RFC 3339 expiry of the blob, when the sender set one. */
  readonly expires?: string;
}

/** What a message or event handler receives besides the data. No logger: observe through diagnostics channels. */
export interface MessageContext {
  readonly messageId: string;
  /** 1 on the first delivery to this consumer group, then 2, 3, ... */
  readonly attempt: number;
  /** CloudEvents `type`, e.g. `service-b.picture.submitted`. */
  readonly type: string;
  /** CloudEvents `source`: the sending service. */
  readonly source: string;
  readonly subject?: string;
  readonly time?: string;
  /**
   * The handler's own W3C span: a child of the delivery's `traceparent` (the transport header of
   * the hop, else the event's extension, its creation context); a new trace when neither is valid.
   * Pass it on (or let the handler's outgoing calls pick it up) to continue the trace. The creation
   * context itself stays in `event.extensions.traceparent`.
   */
  readonly traceparent?: string;
  /** The `tracestate` of that parent, normalized; never one without a valid parent. */
  readonly tracestate?: string;
  readonly topic: string;
  /** The consumer group (by default the service name). */
  readonly group: string;
  readonly key?: string;
  /** Aborted when the handler's time limit passes or the consumer closes. */
  readonly signal: AbortSignal;
  /** The envelope as received. */
  readonly event: CloudEvent;
  /** The claim-checked attachment's reference, when the message carries one. */
  readonly attachmentInfo?: AttachmentInfo;
  /**
   * The attachment's bytes, streamed lazily from the configured blob store and verified against
   * the hash on the event: the stream errors with `SB_CLAIM_CHECK_HASH_MISMATCH` at its end when
   * they differ (treat the bytes as untrusted until it ended), `SB_CLAIM_CHECK_MISSING` when the
   * message has no attachment or the blob is gone.
   */
  attachment(): Readable;
}

/** The return value, when not `undefined`, is summarised into the receipt's `result`. */
export type MessageHandler<C extends AnyContract, K extends keyof C['messages'] & string> = (
  data: MessageData<C, K>,
  context: MessageContext,
) => unknown;

/** `'*'` or `'prefix.*'`: every event of the contract, or those whose name starts with `prefix.`. */
export type EventPattern = '*' | `${string}.*`;

export type EventHandler<C extends AnyContract, P extends string> = (
  data: P extends EventName<C> ? EventData<C, P> : unknown,
  context: MessageContext,
) => unknown;

export interface RetryOptions {
  /** Attempts before a failing message is dead-lettered (the first delivery counts). Default 5. */
  readonly maxAttempts?: number;
  /** Backoff between attempts (core `backoffDelay`): default base 100 ms, max 30 s, factor 2, full jitter. */
  readonly backoff?: BackoffOptions;
}

export interface ClaimCheckOptions {
  /** Data larger than this (encoded bytes) is stored in the blob store and sent by reference. Default 256 KiB. */
  readonly thresholdBytes?: number;
  /** Blobs stored by this service expire this long after the publish, in ms. Default: never. */
  readonly expiresInMs?: number;
}
