/**
 * The CloudEvents 1.0 envelope (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md).
 * Every message and event Switchboard carries is one of these. In memory the context attributes are
 * flat members, the extension attributes live in `extensions`, and binary data is a `Uint8Array` in
 * `data` (the JSON format's `data_base64` is a wire form only: the structured codec writes and
 * reads it).
 */

/** The only spec version Switchboard speaks. */
export const CLOUDEVENTS_SPEC_VERSION = '1.0';

/** A value of an extension attribute, in the CloudEvents type system (String, Integer, Boolean, Binary). */
export type CloudEventAttributeValue = string | number | boolean | Uint8Array;

/**
 * Extension attributes. Names are lower-case ASCII letters and digits (a-z, 0-9), at most 20
 * characters recommended. The ones below are typed; any other valid name may be added.
 */
export interface CloudEventExtensions {
  /** W3C Trace Context `traceparent` (CloudEvents Distributed Tracing extension). */
  readonly traceparent?: string;
  /** W3C Trace Context `tracestate`. */
  readonly tracestate?: string;
  /** URI-reference of the data when it is kept elsewhere (CloudEvents `dataref` extension): the claim check. */
  readonly dataref?: string;
  /** Switchboard claim check: `sha256:<64 lower-case hex digits>` of the referenced bytes. */
  readonly datahash?: string;
  /** Switchboard claim check: length in bytes of the referenced data (an Integer, so at most 2 147 483 647). */
  readonly datasize?: number;
  /** Switchboard claim check: media type of the referenced data (RFC 2046), since `datacontenttype` describes `data`. */
  readonly datamediatype?: string;
  /** Switchboard claim check: RFC 3339 time after which the referenced data may be deleted. */
  readonly dataexpires?: string;
  readonly [name: string]: CloudEventAttributeValue | undefined;
}

export interface CloudEvent<Data = unknown> {
  readonly specversion: typeof CLOUDEVENTS_SPEC_VERSION;
  /** Unique per `source`. Switchboard uses the MessageId (a UUIDv7). */
  readonly id: string;
  /** URI-reference of the context the event happened in. Switchboard uses the service name. */
  readonly source: string;
  /** Reverse-DNS-like type, e.g. `com.example.order.placed`. */
  readonly type: string;
  /** RFC 2046 media type of `data`. Absent with data present means `application/json`. */
  readonly datacontenttype?: string;
  /** Absolute URI of the schema `data` adheres to. */
  readonly dataschema?: string;
  readonly subject?: string;
  /** RFC 3339 timestamp of the occurrence, kept as the string it was written as. */
  readonly time?: string;
  /**
   * The payload. Canonical in-memory form, which every decoder produces: a JSON value when
   * `datacontenttype` is JSON (or absent), a string for text (`text/*`, XML), a `Uint8Array` otherwise.
   */
  readonly data?: Data;
  readonly extensions?: CloudEventExtensions;
}

/** The context attributes the spec defines (they cannot be used as extension names). */
export const CLOUDEVENTS_CORE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'specversion',
  'id',
  'source',
  'type',
  'datacontenttype',
  'dataschema',
  'subject',
  'time',
]);

/** Names no extension may take: the core attributes and the JSON format's data members. */
export const CLOUDEVENTS_RESERVED_NAMES: ReadonlySet<string> = new Set([...CLOUDEVENTS_CORE_ATTRIBUTES, 'data', 'data_base64']);

/** CloudEvents type system names, used to restore extension types that travel as strings. */
export type CloudEventAttributeType = 'String' | 'Integer' | 'Boolean' | 'Binary' | 'URI' | 'URI-reference' | 'Timestamp';

/** Types of the extensions Switchboard defines or uses; decoders restore these from strings. */
export const SWITCHBOARD_EXTENSION_TYPES: Readonly<Record<string, CloudEventAttributeType>> = Object.freeze({
  traceparent: 'String',
  tracestate: 'String',
  dataref: 'URI-reference',
  datahash: 'String',
  datasize: 'Integer',
  datamediatype: 'String',
  dataexpires: 'Timestamp',
});

export const CLOUDEVENTS_JSON_MEDIA_TYPE = 'application/cloudevents+json';
export const CLOUDEVENTS_BATCH_JSON_MEDIA_TYPE = 'application/cloudevents-batch+json';

/**
 * How attributes travel as headers on one transport (binary content mode). Values are always
 * strings: Integer as decimal, Boolean as `true`/`false`, Binary as base64.
 */
export interface CloudEventsBinding {
  readonly name: string;
  /** Prefix of attribute headers, e.g. `ce-`. Matched case-insensitively on read. */
  readonly prefix: string;
  /** Percent-encode header values (space, `"`, `%` and everything outside printable ASCII) and decode them on read. */
  readonly percentEncode: boolean;
}

/**
 * Bindings by transport. HTTP, Kafka and AMQP follow their CloudEvents protocol bindings; NATS
 * follows the NATS binding's `ce-` prefix with HTTP-style values (its headers are MIME-like text);
 * Redis has no official binding, Switchboard uses `ce-` with raw values (stream fields take any string).
 */
export const cloudEventsBindings = {
  http: { name: 'http', prefix: 'ce-', percentEncode: true },
  kafka: { name: 'kafka', prefix: 'ce_', percentEncode: false },
  amqp: { name: 'amqp', prefix: 'cloudEvents:', percentEncode: false },
  nats: { name: 'nats', prefix: 'ce-', percentEncode: true },
  redis: { name: 'redis', prefix: 'ce-', percentEncode: false },
} as const satisfies Record<string, CloudEventsBinding>;

/** Headers and body of one encoded event, ready for a broker's `OutgoingMessage` or an HTTP request. */
export interface EncodedCloudEvent {
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

export interface DecodeOptions {
  /** Keep `data` as the received bytes (no JSON parse, no text decoding): for relays and dead letters. */
  readonly rawData?: boolean;
  /**
   * Types of extensions that arrive as strings (binary mode) or base64 (Binary in JSON), so they are
   * restored. Merged over {@link SWITCHBOARD_EXTENSION_TYPES}.
   */
  readonly extensionTypes?: Readonly<Record<string, CloudEventAttributeType>>;
}
