import { SwitchboardError } from '../errors.js';
import { jsonTooDeep } from '../json.js';
import type { FieldError } from '../standard-schema.js';
import { isBase64, parseCloudEventInteger } from './attribute-types.js';
import { bytesToData, cloudEventsEssence, dataToBytes } from './data.js';
import type {
  CloudEvent,
  CloudEventAttributeType,
  CloudEventAttributeValue,
  CloudEventsBinding,
  DecodeOptions,
  EncodedCloudEvent,
} from './event.js';
import { SWITCHBOARD_EXTENSION_TYPES } from './event.js';
import { attributeToString, percentDecodeHeaderValue, percentEncodeHeaderValue } from './header-value.js';
import { assertCloudEvent, notCloudEvent, validateCloudEvent } from './validate.js';

/** Transport headers as they arrive: node's `IncomingHttpHeaders`, a broker's headers, a plain record. */
export type HeadersInput = Readonly<Record<string, string | readonly string[] | undefined>>;

const CONTENT_TYPE = 'content-type';

/**
 * Binary content mode: attributes become `<prefix><name>` headers, data becomes the body and
 * `datacontenttype` the `content-type` header (or the `<prefix>datacontenttype` attribute header
 * where the binding says so, NATS). Bytes are sent untouched (zero-copy). An event whose data is a
 * JSON value without `datacontenttype` is sent as `application/json`. Throws `SB_NOT_CLOUDEVENT`
 * for an invalid event, data its media type cannot carry, or a `datacontenttype` that would make
 * the message read as structured mode ({@link readsAsStructured}; `encodeCloudEvent` writes those
 * in structured mode).
 */
export function encodeBinary(event: CloudEvent, binding: CloudEventsBinding): EncodedCloudEvent {
  assertCloudEvent(event);
  if (readsAsStructured(event, binding)) {
    throw notCloudEvent([
      {
        pointer: '/datacontenttype',
        message: `binary mode on the ${binding.name} binding cannot carry data of type ${event.datacontenttype}: it would read as a structured message; use structured mode`,
      },
    ]);
  }
  const { prefix } = binding;
  const encode = binding.values === 'percent' ? percentEncodeHeaderValue : identity;
  const headers: Record<string, string> = {
    [`${prefix}specversion`]: event.specversion,
    [`${prefix}id`]: encode(event.id),
    [`${prefix}source`]: encode(event.source),
    [`${prefix}type`]: encode(event.type),
  };
  if (event.subject !== undefined) headers[`${prefix}subject`] = encode(event.subject);
  if (event.time !== undefined) headers[`${prefix}time`] = encode(event.time);
  if (event.dataschema !== undefined) headers[`${prefix}dataschema`] = encode(event.dataschema);
  const extensions = event.extensions;
  if (extensions !== undefined) {
    for (const name of Object.keys(extensions)) {
      const value = extensions[name];
      if (value !== undefined) headers[prefix + name] = encode(attributeToString(value));
    }
  }
  const body = dataToBytes(event.data, event.datacontenttype);
  if (!(body instanceof Uint8Array)) throw notCloudEvent([body]);
  const contentType =
    event.datacontenttype ?? (event.data !== undefined && !(event.data instanceof Uint8Array) ? 'application/json' : undefined);
  if (contentType !== undefined) {
    headers[binding.dataContentType === 'attribute' ? `${prefix}datacontenttype` : CONTENT_TYPE] = encode(contentType);
  }
  return { headers, body };
}

/**
 * True when binary mode on `binding` cannot carry `event`: its `datacontenttype` names a CloudEvents
 * format and the binding carries it as the transport's content type, where it marks structured mode.
 */
export function readsAsStructured(event: CloudEvent, binding: CloudEventsBinding): boolean {
  return (
    binding.dataContentType === 'content-type' &&
    event.datacontenttype !== undefined &&
    cloudEventsEssence(event.datacontenttype) !== undefined
  );
}

function identity(value: string): string {
  return value;
}

function startsWithIgnoreCase(value: string, lowerPrefix: string): boolean {
  if (value.length <= lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = value.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

function headerString(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  return value.join(',');
}

/** Value of a header by case-insensitive name. */
export function getHeader(headers: HeadersInput, name: string): string | undefined {
  const exact = headers[name];
  if (exact !== undefined) return headerString(exact);
  for (const key of Object.keys(headers)) {
    if (key.length === name.length && key.toLowerCase() === name) return headerString(headers[key]);
  }
  return undefined;
}

/** Lower-case attribute names: what an unprefixed header must look like to be read as an attribute (MQTT 5). */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

/**
 * The read prefix (lower case) the message's attribute headers use, or undefined when it has none:
 * the first of the binding's `readPrefixes` that carries `specversion`, else the first one that
 * carries any attribute.
 */
export function attributePrefix(headers: HeadersInput, binding: CloudEventsBinding): string | undefined {
  const prefixes = binding.readPrefixes;
  // What Switchboard itself writes: the binding's own prefix, exactly as written (one lookup).
  if (headers[`${binding.prefix}specversion`] !== undefined) return binding.prefix.toLowerCase();
  if (prefixes.length === 1) {
    const only = prefixes[0]!.toLowerCase();
    return carriesAttributes(headers, only) ? only : undefined;
  }
  let any: string | undefined;
  for (const prefix of prefixes) {
    const lower = prefix.toLowerCase();
    if (getHeader(headers, `${lower}specversion`) !== undefined) return lower;
    if (any === undefined && carriesAttributes(headers, lower)) any = lower;
  }
  return any;
}

function carriesAttributes(headers: HeadersInput, lowerPrefix: string): boolean {
  if (lowerPrefix === '') return getHeader(headers, 'specversion') !== undefined;
  for (const key of Object.keys(headers)) if (startsWithIgnoreCase(key, lowerPrefix)) return true;
  return false;
}

/** True when the headers carry at least one attribute header under one of the binding's prefixes. */
export function hasBinaryAttributes(headers: HeadersInput, binding: CloudEventsBinding): boolean {
  return attributePrefix(headers, binding) !== undefined;
}

/** Restores a typed extension from its string form; leaves the string when it does not parse (validation reports it). */
function restore(value: string, type: CloudEventAttributeType | undefined): CloudEventAttributeValue {
  switch (type) {
    case 'Integer':
      return parseCloudEventInteger(value) ?? value;
    case 'Boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'Binary':
      return isBase64(value) ? new Uint8Array(Buffer.from(value, 'base64')) : value;
    default:
      return value;
  }
}

/**
 * Reads a binary-mode message. Attribute headers are matched by the binding's read prefixes
 * (case-insensitively; one prefix per message), values decoded as the binding says, known
 * extension types restored, and the body turned into data by the data's media type (see
 * {@link CloudEvent.data}): `content-type`, or `<prefix>datacontenttype` where the content type is
 * absent (NATS writes it there; MQTT 5 may repeat it). Throws `SB_NOT_CLOUDEVENT` with field
 * errors, `SB_MALFORMED_JSON` when a JSON body does not parse, or `SB_JSON_TOO_DEEP` when it nests
 * deeper than `JSON_MAX_DEPTH`.
 */
export function decodeBinary(
  headers: HeadersInput,
  body: Uint8Array,
  binding: CloudEventsBinding,
  options: DecodeOptions = {},
): CloudEvent {
  const prefix = attributePrefix(headers, binding) ?? binding.prefix.toLowerCase();
  const unprefixed = prefix === '';
  const decode = binding.values === 'percent' ? percentDecodeHeaderValue : identity;
  const types = options.extensionTypes;
  const errors: FieldError[] = [];
  // Locals, then one object literal: keeps the event's shape stable and its construction cheap.
  let specversion: string | undefined;
  let id: string | undefined;
  let source: string | undefined;
  let type: string | undefined;
  let subject: string | undefined;
  let time: string | undefined;
  let dataschema: string | undefined;
  let contentType: string | undefined;
  let attributeContentType: string | undefined;
  let extensions: Record<string, CloudEventAttributeValue> | undefined;
  for (const key of Object.keys(headers)) {
    const isContentType = key.length === CONTENT_TYPE.length && key.toLowerCase() === CONTENT_TYPE;
    const isAttribute = !isContentType && (unprefixed ? ATTRIBUTE_NAME.test(key) : startsWithIgnoreCase(key, prefix));
    if (!isAttribute && !isContentType) continue;
    const raw = headerString(headers[key]);
    if (raw === undefined) continue;
    const value = decode(raw);
    const name = isAttribute ? key.slice(prefix.length).toLowerCase() : CONTENT_TYPE;
    if (value === undefined) {
      errors.push({ pointer: `/${isAttribute ? name : 'datacontenttype'}`, message: `header ${key} has a malformed encoding` });
      continue;
    }
    switch (name) {
      case CONTENT_TYPE:
        contentType = value;
        break;
      case 'specversion':
        specversion = value;
        break;
      case 'id':
        id = value;
        break;
      case 'source':
        source = value;
        break;
      case 'type':
        type = value;
        break;
      case 'subject':
        subject = value;
        break;
      case 'time':
        time = value;
        break;
      case 'dataschema':
        dataschema = value;
        break;
      case 'datacontenttype':
        attributeContentType = value;
        break;
      case 'data':
      case 'data_base64':
        errors.push({ pointer: `/${name}`, message: `header ${key} is not allowed in binary mode (data travels as the body)` });
        break;
      default: {
        extensions ??= {};
        extensions[name] = restore(value, types?.[name] ?? SWITCHBOARD_EXTENSION_TYPES[name]);
      }
    }
  }
  const dataContentType = pickContentType(binding, contentType, attributeContentType, errors);
  const event: Record<string, unknown> = { specversion, id, source, type };
  if (dataContentType !== undefined) event.datacontenttype = dataContentType;
  if (dataschema !== undefined) event.dataschema = dataschema;
  if (subject !== undefined) event.subject = subject;
  if (time !== undefined) event.time = time;
  if (extensions !== undefined) event.extensions = extensions;
  const validation = validateDecoded(event, errors, types);
  if (validation.length > 0) throw notCloudEvent(validation);
  const data = bytesToData(body, dataContentType, options.rawData === true);
  if (!data.ok) {
    if (data.tooDeep) throw jsonTooDeep('/data');
    if (data.json) throw new SwitchboardError('SB_MALFORMED_JSON', { detail: data.error.message, errors: [data.error] });
    throw notCloudEvent([data.error]);
  }
  if (data.data !== undefined) event.data = data.data;
  return event as unknown as CloudEvent;
}

/**
 * `datacontenttype` from the transport's content type and the `<prefix>datacontenttype` header:
 * the one the binding names wins, the other fills in when it is absent; both present and different
 * is an error.
 */
function pickContentType(
  binding: CloudEventsBinding,
  contentType: string | undefined,
  attribute: string | undefined,
  errors: FieldError[],
): string | undefined {
  if (attribute === undefined) return contentType;
  if (contentType === undefined || contentType === attribute) return attribute;
  if (binding.dataContentType === 'attribute') return attribute;
  errors.push({
    pointer: '/datacontenttype',
    message: `the ${binding.prefix}datacontenttype header (${attribute}) contradicts the content type (${contentType})`,
  });
  return contentType;
}

/** Validation errors of a decoded candidate, after the header errors already found (one error per field). */
function validateDecoded(
  event: Record<string, unknown>,
  errors: FieldError[],
  types: Readonly<Record<string, CloudEventAttributeType>> | undefined,
): FieldError[] {
  const found = validateCloudEvent(event, types === undefined ? {} : { extensionTypes: types });
  if (errors.length === 0) return found;
  const seen = new Set(errors.map((error) => error.pointer));
  return [...errors, ...found.filter((error) => !seen.has(error.pointer))];
}
