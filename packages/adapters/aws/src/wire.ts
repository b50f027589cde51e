import type { OutgoingMessage } from '@switchboard/core';

/**
 * The wire format on SNS and SQS (see `docs/adapters/aws.md`): the message body is the broker
 * message's body as text, and its headers travel as message attributes, within what AWS allows.
 *
 * - **Attributes.** SQS takes at most 10 message attributes, and an SNS subscription with raw
 *   delivery *discards* a message that carries more
 *   (https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html), so a
 *   message never carries more than 10. Switchboard's own come first (`sb-id`, and `sb-key`,
 *   `sb-body`, `ExtendedPayloadSize` when needed), then the routing attributes copied from a
 *   structured CloudEvent (`ce-type`, `ce-source`: what filter policies match), then the headers, one
 *   attribute each. Headers that do not fit, or that AWS cannot carry as an attribute (an empty value,
 *   a name outside `[A-Za-z0-9_.-]`, a reserved name, characters SQS refuses), travel together as JSON
 *   in one `sb-meta` attribute.
 * - **Body.** Text as it is. SQS refuses characters outside `#x9 | #xA | #xD | #x20-#xD7FF |
 *   #xE000-#xFFFD | #x10000-#x10FFFF`
 *   (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html), and
 *   the emulator refuses everything above U+FFFF as well; in a JSON body those characters can only
 *   stand inside strings, so they are written as `\uXXXX` escapes (JSON readers restore them).
 *   Anything else that is not such text (binary, invalid UTF-8, an empty body) is sent as base64 with
 *   `sb-body: base64` (or `empty`).
 * - **Size.** What AWS counts: the body plus each attribute's name, data type and value, in UTF-8
 *   bytes; 256 KiB through SNS, attributes included
 *   (https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html).
 */

export interface WireAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: Uint8Array;
}

export type WireAttributes = Record<string, WireAttribute>;

/** Attribute names Switchboard writes and reads itself. */
export const ATTRIBUTE = {
  /** The transport id (`OutgoingMessage.id`). */
  id: 'sb-id',
  /** The ordering key. */
  key: 'sb-key',
  /** `base64` or `empty`: how the body is encoded when it is not sent as text. */
  body: 'sb-body',
  /** JSON `{ headers?, key?, id? }`: what did not fit as attributes of its own. */
  meta: 'sb-meta',
  /** The AWS extended client's attribute: the original body's size when the body is a pointer to S3. */
  extendedPayloadSize: 'ExtendedPayloadSize',
  /** The same, as the older Java extended client wrote it. */
  legacyPayloadSize: 'SQSLargePayloadSize',
} as const;

const RESERVED: ReadonlySet<string> = new Set(Object.values(ATTRIBUTE));

/** Routing attributes copied from a structured CloudEvent (filter policies match them). */
export const ROUTING_ATTRIBUTES = { type: 'ce-type', source: 'ce-source' } as const;

/** Most message attributes of one message (SQS; SNS raw delivery discards a message with more). */
export const MAX_ATTRIBUTES = 10;
/** Largest message through SNS, body and attributes counted (256 KiB). */
export const SNS_MAX_BYTES = 262_144;

const STRUCTURED = 'application/cloudevents+json';

/** A valid attribute name: `[A-Za-z0-9_.-]{1,256}`, no leading, trailing or double `.`, no `AWS.`/`Amazon.` prefix. */
export function isAttributeName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= 256 &&
    /^[A-Za-z0-9_.-]+$/.test(name) &&
    !name.startsWith('.') &&
    !name.endsWith('.') &&
    !name.includes('..') &&
    !/^(aws|amazon)\./i.test(name)
  );
}

/** Text SQS and the emulator both accept as a string value: non-empty, BMP characters SQS allows. */
export function isAttributeText(value: string): boolean {
  return value.length > 0 && /^[\t\n\r\x20-\ud7ff\ue000-\ufffd]+$/.test(value);
}

/** Characters the body cannot carry as they are, though JSON can escape them: above U+FFFF, U+FFFE, U+FFFF. */
const ESCAPED_IN_JSON = /[\u{10000}-\u{10FFFF}\uFFFE\uFFFF]/gu;

function hex4(code: number): string {
  return code.toString(16).padStart(4, '0');
}

/** JSON text with every character SQS or the emulator refuses written as `\uXXXX` (inside strings, the only place they can be). */
export function escapeJsonText(json: string): string {
  return json.replace(ESCAPED_IN_JSON, (char) => {
    let out = '';
    for (let i = 0; i < char.length; i++) out += `\\u${hex4(char.charCodeAt(i))}`;
    return out;
  });
}

function essence(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  return contentType.split(';', 1)[0]?.trim().toLowerCase();
}

function isJsonType(contentType: string | undefined): boolean {
  const type = essence(contentType);
  return type !== undefined && (type === 'application/json' || type.endsWith('+json'));
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * `plain`: every character is one SQS and the emulator take. `escapable`: some are above U+FFFF or
 * U+FFFE/U+FFFF (JSON can escape those). `refused`: a control other than tab, LF, CR, or a lone surrogate.
 */
function characters(text: string): 'plain' | 'escapable' | 'refused' {
  let kind: 'plain' | 'escapable' = 'plain';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20) {
      if (code !== 0x09 && code !== 0x0a && code !== 0x0d) return 'refused';
    } else if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return 'refused';
      kind = 'escapable';
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return 'refused';
    } else if (code >= 0xfffe) {
      kind = 'escapable';
    }
  }
  return kind;
}

/** The body as text AWS takes, or `undefined` when it must go as base64. */
export function bodyAsText(body: Uint8Array, contentType: string | undefined): string | undefined {
  let ascii = true;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (byte >= 0x80 || (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) || byte === 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1');
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return undefined;
  }
  const kind = characters(text);
  if (kind === 'refused') return undefined;
  if (kind === 'plain') return text;
  return isJsonType(contentType) ? escapeJsonText(text) : undefined;
}

/** The routing attributes of a structured CloudEvent body, read from its first members when it was written by a CloudEvents codec. */
export function routingAttributes(text: string): { type?: string; source?: string } {
  const head = /^\s*\{"specversion":"1\.0","id":"(?:[^"\\]|\\.)*","source":"((?:[^"\\]|\\.)*)","type":"((?:[^"\\]|\\.)*)"/.exec(
    text.slice(0, 8192),
  );
  if (head !== null) {
    try {
      return { source: JSON.parse(`"${head[1]}"`) as string, type: JSON.parse(`"${head[2]}"`) as string };
    } catch {
      // Fall through to a full parse.
    }
  }
  try {
    const event = JSON.parse(text) as Record<string, unknown>;
    if (typeof event !== 'object' || event === null) return {};
    return {
      ...(typeof event.type === 'string' ? { type: event.type } : {}),
      ...(typeof event.source === 'string' ? { source: event.source } : {}),
    };
  } catch {
    return {};
  }
}

export interface EncodedMessage {
  /** The SNS `Message` / SQS `MessageBody`. */
  readonly body: string;
  readonly attributes: WireAttributes;
  /** Bytes AWS counts against its size limit: the body plus each attribute's name, data type and value. */
  readonly size: number;
}

export interface EncodeOptions {
  /** The body was stored in S3: send this pointer (JSON text) instead, with `ExtendedPayloadSize`. */
  readonly pointer?: { readonly text: string; readonly size: number };
}

function attributeBytes(name: string, attribute: WireAttribute): number {
  const value = attribute.BinaryValue !== undefined ? attribute.BinaryValue.byteLength : Buffer.byteLength(attribute.StringValue ?? '');
  return Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType) + value;
}

/** Bytes AWS counts for a body and its attributes. */
export function messageSize(body: string, attributes: WireAttributes): number {
  let size = Buffer.byteLength(body);
  for (const name of Object.keys(attributes)) size += attributeBytes(name, attributes[name]!);
  return size;
}

function text(value: string): WireAttribute {
  return { DataType: 'String', StringValue: value };
}

/** Encodes a broker message for SNS `Publish` / SQS `SendMessage` (see the module comment). */
export function encodeMessage(message: OutgoingMessage, options: EncodeOptions = {}): EncodedMessage {
  const attributes: WireAttributes = {};
  const meta: { headers?: Record<string, string>; key?: string; id?: string } = {};
  const contentType = message.headers['content-type'];

  let body: string;
  if (options.pointer !== undefined) {
    body = options.pointer.text;
    attributes[ATTRIBUTE.extendedPayloadSize] = { DataType: 'Number', StringValue: String(options.pointer.size) };
  } else if (message.body.byteLength === 0) {
    body = '-';
    attributes[ATTRIBUTE.body] = text('empty');
  } else {
    const asText = bodyAsText(message.body, contentType);
    if (asText === undefined) {
      body = Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength).toString('base64');
      attributes[ATTRIBUTE.body] = text('base64');
    } else {
      body = asText;
    }
  }

  if (message.id !== '') {
    if (isAttributeText(message.id)) attributes[ATTRIBUTE.id] = text(message.id);
    else meta.id = message.id;
  }
  if (message.key !== undefined) {
    if (isAttributeText(message.key)) attributes[ATTRIBUTE.key] = text(message.key);
    else meta.key = message.key;
  }

  // Routing copies of a structured CloudEvent, unless a header of the same name carries its own.
  if (essence(contentType) === STRUCTURED) {
    const structured =
      options.pointer === undefined
        ? body
        : Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength).toString('utf8');
    const routing = routingAttributes(structured);
    for (const [member, name] of [
      ['type', ROUTING_ATTRIBUTES.type],
      ['source', ROUTING_ATTRIBUTES.source],
    ] as const) {
      const value = routing[member];
      if (value !== undefined && message.headers[name] === undefined && isAttributeText(value)) put(attributes, name, text(value));
    }
  }

  const plain: string[] = [];
  const rest: string[] = [];
  for (const name of Object.keys(message.headers)) {
    const value = message.headers[name]!;
    if (isAttributeName(name) && !RESERVED.has(name) && attributes[name] === undefined && isAttributeText(value)) plain.push(name);
    else rest.push(name);
  }
  const metaNeeded = meta.id !== undefined || meta.key !== undefined;
  const room = MAX_ATTRIBUTES - Object.keys(attributes).length;
  const fits = rest.length === 0 && plain.length <= room - (metaNeeded ? 1 : 0);
  const kept = fits ? plain : plain.slice(0, Math.max(0, room - 1));
  for (const name of kept) put(attributes, name, text(message.headers[name]!));
  if (!fits) {
    meta.headers = {};
    for (const name of [...plain.slice(kept.length), ...rest]) put(meta.headers, name, message.headers[name]!);
  }
  if (meta.headers !== undefined || metaNeeded) attributes[ATTRIBUTE.meta] = text(escapeJsonText(JSON.stringify(meta)));

  return { body, attributes, size: messageSize(body, attributes) };
}

// --- Reading

/** A message attribute as SQS returns it, or as the SNS JSON envelope carries it. */
export interface ReceivedAttribute {
  readonly DataType?: string | undefined;
  readonly StringValue?: string | undefined;
  readonly BinaryValue?: Uint8Array | undefined;
}

/** The fields of an SQS message this module reads (the SDK's `Message` fits). */
export interface ReceivedMessage {
  readonly MessageId?: string | undefined;
  readonly Body?: string | undefined;
  readonly MessageAttributes?: Record<string, ReceivedAttribute> | undefined;
  readonly Attributes?: Partial<Record<string, string>> | undefined;
}

/** An AWS extended-client pointer: the real body is this S3 object. */
export interface PayloadPointer {
  readonly bucket: string;
  readonly key: string;
  /** `ExtendedPayloadSize` (or the legacy attribute): the body's size in bytes, when given. */
  readonly size: number | undefined;
  /** The pointer as it came (delivered as the body when the object cannot be read). */
  readonly text: string;
}

export interface DecodedMessage {
  /** The transport id: `sb-id`, else the SQS MessageId of a foreign producer's message. */
  readonly id: string;
  readonly headers: Record<string, string>;
  /** The body; `undefined` when it is in S3 (`pointer`). */
  readonly body: Uint8Array | undefined;
  readonly pointer?: PayloadPointer;
  readonly key?: string;
  /** The SNS MessageId, when the message came in the SNS JSON envelope (raw delivery off). */
  readonly snsMessageId?: string;
}

/** The class names the Java extended clients write as the first element of a pointer. */
const POINTER_CLASSES: ReadonlySet<string> = new Set([
  'software.amazon.payloadoffloading.PayloadS3Pointer',
  'com.amazon.sqs.javamessaging.MessageS3Pointer',
]);

/** Reads an extended-client pointer body (`["…PayloadS3Pointer",{"s3BucketName":B,"s3Key":K}]`, or the bare object). */
export function parsePointer(body: string): { bucket: string; key: string } | undefined {
  if (body.length > 4096) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (Array.isArray(value)) {
    if (value.length !== 2 || typeof value[0] !== 'string' || !POINTER_CLASSES.has(value[0])) return undefined;
    value = value[1];
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { s3BucketName, s3Key } = value as Record<string, unknown>;
  if (typeof s3BucketName !== 'string' || typeof s3Key !== 'string' || s3BucketName === '' || s3Key === '') return undefined;
  return { bucket: s3BucketName, key: s3Key };
}

/** The pointer the Java and Python extended clients read (`software.amazon.payloadoffloading.PayloadS3Pointer`). */
export function pointerText(bucket: string, key: string): string {
  return JSON.stringify(['software.amazon.payloadoffloading.PayloadS3Pointer', { s3BucketName: bucket, s3Key: key }]);
}

interface Envelope {
  readonly body: string;
  readonly attributes: Record<string, ReceivedAttribute>;
  readonly messageId: string | undefined;
}

/**
 * The SNS JSON envelope of a subscription without raw delivery
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html): `Message` is the
 * body, `MessageAttributes` are `{ Type, Value }` (Binary as base64). `Subject` may be absent or
 * `null` (the emulator writes `null`).
 */
function unwrapEnvelope(body: string): Envelope | undefined {
  if (!body.startsWith('{') || !body.includes('"Notification"')) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (value.Type !== 'Notification' || typeof value.Message !== 'string' || typeof value.TopicArn !== 'string') return undefined;
  const attributes: Record<string, ReceivedAttribute> = {};
  const raw = value.MessageAttributes;
  if (typeof raw === 'object' && raw !== null) {
    for (const [name, entry] of Object.entries(raw as Record<string, { Type?: unknown; Value?: unknown }>)) {
      if (typeof entry?.Type !== 'string' || typeof entry.Value !== 'string') continue;
      attributes[name] = entry.Type.startsWith('Binary')
        ? { DataType: entry.Type, BinaryValue: new Uint8Array(Buffer.from(entry.Value, 'base64')) }
        : { DataType: entry.Type, StringValue: entry.Value };
    }
  }
  return { body: value.Message, attributes, messageId: typeof value.MessageId === 'string' ? value.MessageId : undefined };
}

function attributeString(attribute: ReceivedAttribute): string | undefined {
  if (attribute.BinaryValue !== undefined && (attribute.DataType ?? '').startsWith('Binary')) {
    return Buffer.from(attribute.BinaryValue.buffer, attribute.BinaryValue.byteOffset, attribute.BinaryValue.byteLength).toString('base64');
  }
  return attribute.StringValue;
}

function readMeta(value: string | undefined): { headers?: Record<string, string>; key?: string; id?: string } {
  if (value === undefined) return {};
  try {
    const meta = JSON.parse(value) as Record<string, unknown>;
    const out: { headers?: Record<string, string>; key?: string; id?: string } = {};
    if (typeof meta.headers === 'object' && meta.headers !== null) {
      out.headers = {};
      for (const [name, header] of Object.entries(meta.headers)) if (typeof header === 'string') put(out.headers, name, header);
    }
    if (typeof meta.key === 'string') out.key = meta.key;
    if (typeof meta.id === 'string') out.id = meta.id;
    return out;
  } catch {
    return {};
  }
}

/**
 * Reads an SQS message: raw delivery, the SNS envelope, or a message a foreign producer sent
 * straight to the queue; an extended-client pointer is reported as `pointer` (the caller fetches it).
 */
export function decodeMessage(message: ReceivedMessage): DecodedMessage {
  let body = message.Body ?? '';
  let attributes: Record<string, ReceivedAttribute> = message.MessageAttributes ?? {};
  let snsMessageId: string | undefined;
  if (Object.keys(attributes).length === 0) {
    const envelope = unwrapEnvelope(body);
    if (envelope !== undefined) {
      body = envelope.body;
      attributes = envelope.attributes;
      snsMessageId = envelope.messageId;
    }
  }
  const values: Record<string, string> = {};
  for (const name of Object.keys(attributes)) {
    const value = attributeString(attributes[name]!);
    if (value !== undefined) put(values, name, value);
  }
  const meta = readMeta(values[ATTRIBUTE.meta]);
  const headers: Record<string, string> = {};
  for (const name of Object.keys(values)) if (!RESERVED.has(name)) put(headers, name, values[name]!);
  if (meta.headers !== undefined) for (const name of Object.keys(meta.headers)) put(headers, name, meta.headers[name]!);

  const ownId = values[ATTRIBUTE.id] ?? meta.id;
  const id = ownId ?? message.MessageId ?? '';
  const groupId = message.Attributes?.MessageGroupId;
  const key = meta.key ?? values[ATTRIBUTE.key] ?? (ownId === undefined ? groupId : undefined);
  const base = { id, headers, ...(key === undefined ? {} : { key }), ...(snsMessageId === undefined ? {} : { snsMessageId }) };

  const sizeText = values[ATTRIBUTE.extendedPayloadSize] ?? values[ATTRIBUTE.legacyPayloadSize];
  if (sizeText !== undefined) {
    const pointer = parsePointer(body);
    if (pointer !== undefined) {
      const size = Number(sizeText);
      return {
        ...base,
        body: undefined,
        pointer: { ...pointer, size: Number.isSafeInteger(size) && size >= 0 ? size : undefined, text: body },
      };
    }
    // Not a pointer after all: the attribute stays visible, the body is delivered as it came.
    for (const name of [ATTRIBUTE.extendedPayloadSize, ATTRIBUTE.legacyPayloadSize]) {
      const value = values[name];
      if (value !== undefined) headers[name] = value;
    }
  }
  const encoding = values[ATTRIBUTE.body];
  let bytes: Uint8Array;
  if (encoding === 'empty') bytes = new Uint8Array(0);
  else if (encoding === 'base64') bytes = new Uint8Array(Buffer.from(body, 'base64'));
  else bytes = new Uint8Array(Buffer.from(body, 'utf8'));
  return { ...base, body: bytes };
}

/**
 * `record[name] = value`, also for the name `__proto__` (a valid SQS attribute and header name), which
 * plain assignment would turn into a prototype change and lose.
 */
function put<T>(record: Record<string, T>, name: string, value: T): void {
  if (name === '__proto__') Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
  else record[name] = value;
}
