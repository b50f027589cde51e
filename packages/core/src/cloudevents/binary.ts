import { SwitchboardError } from '../errors.js';
import type { FieldError } from '../standard-schema.js';
import { isBase64, parseCloudEventInteger } from './attribute-types.js';
import { bytesToData, dataToBytes } from './data.js';
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
 * `datacontenttype` the `content-type` header. Bytes are sent untouched (zero-copy). An event whose
 * data is a JSON value without `datacontenttype` is sent with `content-type: application/json`.
 * Throws `SB_NOT_CLOUDEVENT` for an invalid event or data its media type cannot carry.
 */
export function encodeBinary(event: CloudEvent, binding: CloudEventsBinding): EncodedCloudEvent {
  assertCloudEvent(event);
  const { prefix } = binding;
  const encode = binding.percentEncode ? percentEncodeHeaderValue : identity;
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
  if (event.datacontenttype !== undefined) headers[CONTENT_TYPE] = encode(event.datacontenttype);
  else if (event.data !== undefined && !(event.data instanceof Uint8Array)) headers[CONTENT_TYPE] = 'application/json';
  return { headers, body };
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

/** True when the headers carry at least one `<prefix>*` attribute header. */
export function hasBinaryAttributes(headers: HeadersInput, binding: CloudEventsBinding): boolean {
  const prefix = binding.prefix.toLowerCase();
  for (const key of Object.keys(headers)) if (startsWithIgnoreCase(key, prefix)) return true;
  return false;
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
 * Reads a binary-mode message. Attribute headers are matched by prefix case-insensitively, values
 * percent-decoded when the binding says so, known extension types restored, and the body turned
 * into data by `content-type` (see {@link CloudEvent.data}). Throws `SB_NOT_CLOUDEVENT` with field
 * errors, or `SB_MALFORMED_JSON` when a JSON body does not parse.
 */
export function decodeBinary(
  headers: HeadersInput,
  body: Uint8Array,
  binding: CloudEventsBinding,
  options: DecodeOptions = {},
): CloudEvent {
  const prefix = binding.prefix.toLowerCase();
  const decode = binding.percentEncode ? percentDecodeHeaderValue : identity;
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
  let extensions: Record<string, CloudEventAttributeValue> | undefined;
  for (const key of Object.keys(headers)) {
    const isAttribute = startsWithIgnoreCase(key, prefix);
    if (!isAttribute && !(key.length === CONTENT_TYPE.length && key.toLowerCase() === CONTENT_TYPE)) continue;
    const raw = headerString(headers[key]);
    if (raw === undefined) continue;
    const value = decode(raw);
    const name = isAttribute ? key.slice(prefix.length).toLowerCase() : CONTENT_TYPE;
    if (value === undefined) {
      errors.push({ pointer: `/${isAttribute ? name : 'datacontenttype'}`, message: `header ${key} has a malformed percent-encoding` });
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
      case 'data':
      case 'data_base64':
        errors.push({
          pointer: `/${name}`,
          message: `header ${key} is not allowed in binary mode (datacontenttype travels as content-type, data as the body)`,
        });
        break;
      default: {
        extensions ??= {};
        extensions[name] = restore(value, types?.[name] ?? SWITCHBOARD_EXTENSION_TYPES[name]);
      }
    }
  }
  const event: Record<string, unknown> = { specversion, id, source, type };
  if (contentType !== undefined) event.datacontenttype = contentType;
  if (dataschema !== undefined) event.dataschema = dataschema;
  if (subject !== undefined) event.subject = subject;
  if (time !== undefined) event.time = time;
  if (extensions !== undefined) event.extensions = extensions;
  const validation = validateDecoded(event, errors, types);
  if (validation.length > 0) throw notCloudEvent(validation);
  const data = bytesToData(body, contentType, options.rawData === true);
  if (!data.ok) {
    if (data.json) throw new SwitchboardError('SB_MALFORMED_JSON', { detail: data.error.message, errors: [data.error] });
    throw notCloudEvent([data.error]);
  }
  if (data.data !== undefined) event.data = data.data;
  return event as unknown as CloudEvent;
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
