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

/** Content modes for a single event. Batched mode exists for HTTP only (see `cloudEventFromHttp`). */
export type CloudEventsMode = 'binary' | 'structured';

/**
 * How CloudEvents travel on one transport: the protocol binding written as data. Every adapter
 * declares one (`Broker.binding`), and the messaging layer encodes and decodes through it without
 * ever naming an engine.
 *
 * Headers are the transport's metadata as a string map. Adapters map their native properties to
 * it: the key `content-type` is always the transport's content type (an HTTP or NATS header, the
 * AMQP `content-type` property, the MQTT 5 Content Type property), and natively typed values
 * (AMQP) arrive in their canonical string form (Integer decimal, Boolean `true`/`false`, Binary
 * base64, Timestamp RFC 3339).
 */
export interface CloudEventsBinding {
  readonly name: string;
  /** The content mode written. Receivers accept both modes. */
  readonly mode: CloudEventsMode;
  /** Prefix of attribute headers written in binary mode, e.g. `ce-`; `''` keeps the attribute names unchanged (MQTT 5). */
  readonly prefix: string;
  /**
   * Prefixes accepted on read, matched case-insensitively. A message uses one of them for all its
   * attributes: the one that carries `specversion` (or, lacking it, the first one seen).
   */
  readonly readPrefixes: readonly string[];
  /**
   * Attribute header values. `percent`: percent-encoded on write (space, `"`, `%` and everything
   * outside printable ASCII); on read first unescaped as an RFC 7230 quoted-string, then
   * percent-decoded once (HTTP, NATS). `raw`: written and read as they are.
   */
  readonly values: 'percent' | 'raw';
  /**
   * Where `datacontenttype` travels in binary mode: the transport's `content-type` (HTTP, AMQP,
   * MQTT, Kafka), or as the attribute header `<prefix>datacontenttype` (NATS). Read from either.
   */
  readonly dataContentType: 'content-type' | 'attribute';
  /**
   * A message with neither attribute headers nor a content type is read as a structured JSON event
   * (what MQTT 3.1.1 and NATS before 2.2 send, and a hand-written message on engines without a
   * binding).
   */
  readonly impliedStructured: boolean;
}

/**
 * The protocol bindings. HTTP, Kafka, AMQP, MQTT and NATS follow their CloudEvents protocol
 * bindings (cloudevents/spec `cloudevents/bindings/`); `plain` is Switchboard's documented layout for
 * engines that have none (Redis Streams, PostgreSQL, SQLite, memory): `ce-` attribute fields with
 * raw values and a `content-type` field, or a structured document (see `docs/brokers.md`).
 *
 * AMQP is the AMQP 1.0 binding as RabbitMQ maps AMQP 1.0 application-properties to AMQP 0-9-1
 * headers: `cloudEvents_` is written (the JMS-friendly separator the binding prefers), and
 * `cloudEvents:` and the RabbitMQ working draft's `ce-` are read as well.
 */
export const cloudEventsBindings = {
  http: {
    name: 'http',
    mode: 'binary',
    prefix: 'ce-',
    readPrefixes: ['ce-'],
    values: 'percent',
    dataContentType: 'content-type',
    impliedStructured: false,
  },
  kafka: {
    name: 'kafka',
    mode: 'binary',
    prefix: 'ce_',
    readPrefixes: ['ce_'],
    values: 'raw',
    dataContentType: 'content-type',
    impliedStructured: false,
  },
  amqp: {
    name: 'amqp',
    mode: 'binary',
    prefix: 'cloudEvents_',
    readPrefixes: ['cloudEvents_', 'cloudEvents:', 'ce-'],
    values: 'raw',
    dataContentType: 'content-type',
    impliedStructured: false,
  },
  mqtt: {
    name: 'mqtt',
    mode: 'structured',
    prefix: '',
    readPrefixes: [''],
    values: 'raw',
    dataContentType: 'content-type',
    impliedStructured: true,
  },
  nats: {
    name: 'nats',
    mode: 'binary',
    prefix: 'ce-',
    readPrefixes: ['ce-'],
    values: 'percent',
    dataContentType: 'attribute',
    impliedStructured: true,
  },
  /**
   * SNS + SQS (no CloudEvents protocol binding exists): structured, the whole event is the message
   * body; `ce-` message attributes are read too, and a body with no attributes is read as structured.
   */
  snsSqs: {
    name: 'sns-sqs',
    mode: 'structured',
    prefix: 'ce-',
    readPrefixes: ['ce-'],
    values: 'raw',
    dataContentType: 'content-type',
    impliedStructured: true,
  },
  plain: {
    name: 'plain',
    mode: 'binary',
    prefix: 'ce-',
    readPrefixes: ['ce-'],
    values: 'raw',
    dataContentType: 'content-type',
    impliedStructured: true,
  },
} as const satisfies Record<string, CloudEventsBinding>;

/** `binding` writing `mode` instead of its own (e.g. core NATS sends structured events). */
export function withMode(binding: CloudEventsBinding, mode: CloudEventsMode): CloudEventsBinding {
  return binding.mode === mode ? binding : { ...binding, mode };
}

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
