import type { Headers, OutgoingMessage } from '@switchboard/core';
import type { MessageProperties, Options } from 'amqplib';

/**
 * The wire mapping of the RabbitMQ adapter: `OutgoingMessage` / `Delivery` headers to and from
 * AMQP 0-9-1 properties and the headers table, as RabbitMQ maps the CloudEvents AMQP 1.0 binding
 * (application-properties become headers, the AMQP `content-type` property stays a property).
 *
 * - The header `content-type` travels in the AMQP `content-type` **property**, never in the
 *   headers table: in binary mode it is the event's `datacontenttype`, in structured mode
 *   `application/cloudevents+json`. On receive the property is read first; a `content-type`
 *   entry of the headers table (what the RabbitMQ working draft's examples show) fills in when the
 *   property is absent.
 * - Every other header goes into the headers table as a string (the CloudEvents attributes are
 *   `cloudEvents_<name>` with canonical string values). Natively typed values from a foreign
 *   producer are turned into their CloudEvents canonical strings on receive.
 * - The adapter's own metadata travels in `x-sb-*` headers (the ordering key, the attempts made
 *   before a trip through a delay queue); they and the server's own headers (`x-death`, ...) are
 *   taken out before the headers are handed up.
 */

/** Ordering key of the message. */
export const KEY_HEADER = 'x-sb-key';
/** Attempts already made before the message was parked in a delay queue. */
export const ATTEMPT_HEADER = 'x-sb-attempt';
const OWN_PREFIX = 'x-sb-';
/** Set by quorum queues on redelivery. */
export const DELIVERY_COUNT_HEADER = 'x-delivery-count';

/** Headers the server adds on redelivery, dead-lettering and shovelling; not part of the message. */
export const SERVER_HEADERS: ReadonlySet<string> = new Set([
  'x-death',
  DELIVERY_COUNT_HEADER,
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-received-from',
]);

const CONTENT_TYPE = 'content-type';

function isContentType(name: string): boolean {
  return name.length === CONTENT_TYPE.length && (name === CONTENT_TYPE || name.toLowerCase() === CONTENT_TYPE);
}

/** The publish properties of one message: `content-type` as the property, the rest in the headers table. */
export function toAmqpProperties(message: OutgoingMessage): Options.Publish {
  const table: Record<string, string> = {};
  let contentType: string | undefined;
  const source = message.headers;
  for (const name in source) {
    const value = source[name];
    if (value === undefined) continue;
    if (isContentType(name)) contentType = value;
    else table[name] = value;
  }
  if (message.key !== undefined) table[KEY_HEADER] = message.key;
  const properties: Options.Publish = { persistent: true, mandatory: true, headers: table };
  if (message.id !== '') properties.messageId = message.id;
  if (contentType !== undefined) properties.contentType = contentType;
  return properties;
}

/** What the adapter reads from a delivery's properties. */
export interface ReceivedProperties {
  /** The AMQP `message-id` property, `''` when the producer set none. */
  readonly id: string;
  readonly headers: Headers;
  readonly key: string | undefined;
  /** Attempts made before the last trip through a delay queue. */
  readonly priorAttempts: number;
  /** `x-delivery-count` set by quorum queues on redelivery, if any. */
  readonly deliveryCount: number | undefined;
}

export function fromAmqpProperties(properties: MessageProperties): ReceivedProperties {
  const headers: Record<string, string> = {};
  let key: string | undefined;
  let priorAttempts = 0;
  let deliveryCount: number | undefined;
  let tableContentType: string | undefined;
  const table = properties.headers as Record<string, unknown> | undefined;
  if (table !== undefined && table !== null) {
    for (const name in table) {
      const value = table[name];
      if (value === undefined || value === null) continue;
      if (name.startsWith(OWN_PREFIX)) {
        if (name === KEY_HEADER) key = canonicalString(value);
        else if (name === ATTEMPT_HEADER) priorAttempts = Number(canonicalString(value)) || 0;
      } else if (name === DELIVERY_COUNT_HEADER) {
        deliveryCount = Number(value) || 0;
      } else if (SERVER_HEADERS.has(name)) {
        // The server's bookkeeping, not the message's.
      } else if (isContentType(name)) {
        tableContentType = canonicalString(value);
      } else {
        headers[name] = canonicalString(value);
      }
    }
  }
  const contentType = typeof properties.contentType === 'string' ? properties.contentType : tableContentType;
  if (contentType !== undefined) headers[CONTENT_TYPE] = contentType;
  const id = properties.messageId;
  return {
    id: typeof id === 'string' ? id : id === undefined || id === null ? '' : String(id),
    headers,
    key,
    priorAttempts,
    deliveryCount,
  };
}

/** The properties a copy of a received message keeps (a parked copy in a delay queue). `userId` and `expiration` are not copied. */
export function copyProperties(properties: MessageProperties, headers: Record<string, unknown>): Options.Publish {
  const copy: Options.Publish = { persistent: true, mandatory: true, headers };
  if (properties.messageId !== undefined) copy.messageId = properties.messageId;
  if (properties.contentType !== undefined) copy.contentType = properties.contentType;
  if (properties.contentEncoding !== undefined) copy.contentEncoding = properties.contentEncoding;
  if (properties.correlationId !== undefined) copy.correlationId = properties.correlationId;
  if (properties.replyTo !== undefined) copy.replyTo = properties.replyTo;
  if (properties.timestamp !== undefined) copy.timestamp = properties.timestamp;
  if (properties.type !== undefined) copy.type = properties.type;
  if (properties.appId !== undefined) copy.appId = properties.appId;
  if (properties.priority !== undefined) copy.priority = properties.priority;
  return copy;
}

/** A typed field value as amqplib decodes the exotic AMQP types (`{ '!': 'timestamp', value }`). */
interface TypedValue {
  readonly '!': string;
  readonly value: unknown;
}

function isTypedValue(value: object): value is TypedValue {
  return Object.hasOwn(value, '!') && Object.hasOwn(value, 'value');
}

/**
 * The CloudEvents canonical string of an AMQP field value: strings as they are, integers (byte,
 * short, int, long, unsigned) and floating-point numbers in decimal, booleans `true` / `false`,
 * timestamps (seconds since the epoch) in RFC 3339 UTC, byte arrays in base64, decimals as decimal
 * strings. Tables and arrays, which no attribute type has, become JSON.
 */
export function canonicalString(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return '';
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      if (value instanceof Date) return rfc3339(value.getTime());
      if (isTypedValue(value)) {
        if (value['!'] === 'timestamp') return rfc3339(Number(value.value) * 1000);
        if (value['!'] === 'decimal') return decimalString(value.value as { places: number; digits: number });
        return canonicalString(value.value);
      }
      return JSON.stringify(value);
    }
    default:
      return String(value);
  }
}

/** RFC 3339 in UTC, without a fraction when it is zero (`2018-04-05T03:56:24Z`). */
function rfc3339(ms: number): string {
  const text = new Date(ms).toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}

/** An AMQP decimal (`digits` × 10^-`places`) as a decimal string, exactly. */
function decimalString(decimal: { places: number; digits: number }): string {
  const digits = String(decimal.digits);
  const places = decimal.places;
  if (places === 0) return digits;
  const padded = digits.padStart(places + 1, '0');
  return `${padded.slice(0, -places)}.${padded.slice(-places)}`;
}
