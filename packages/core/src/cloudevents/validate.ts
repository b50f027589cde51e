import { SwitchboardError } from '../errors.js';
import type { FieldError } from '../standard-schema.js';
import {
  isCloudEventInteger,
  isExtensionName,
  parseDataHash,
  stringProblem,
  timestampProblem,
  uriProblem,
  uriReferenceProblem,
} from './attribute-types.js';
import { mediaTypeOf } from './data.js';
import type { CloudEvent, CloudEventAttributeType } from './event.js';
import { CLOUDEVENTS_RESERVED_NAMES, CLOUDEVENTS_SPEC_VERSION, SWITCHBOARD_EXTENSION_TYPES } from './event.js';

/** Field errors point at the attribute as the JSON format names it: `/id`, `/comexampleextension1`. */
function pointer(name: string): string {
  return `/${name}`;
}

function checkString(errors: FieldError[], name: string, value: unknown, required: boolean): value is string {
  if (value === undefined) {
    if (required) errors.push({ pointer: pointer(name), message: `${name} is required` });
    return false;
  }
  if (typeof value !== 'string') {
    errors.push({ pointer: pointer(name), message: `${name} must be a String, got ${describeType(value)}` });
    return false;
  }
  if (value.length === 0) {
    errors.push({ pointer: pointer(name), message: `${name} must be a non-empty String` });
    return false;
  }
  const problem = stringProblem(value);
  if (problem) {
    errors.push({ pointer: pointer(name), message: `${name} ${problem}` });
    return false;
  }
  return true;
}

function checkTyped(errors: FieldError[], name: string, value: unknown, type: CloudEventAttributeType): void {
  switch (type) {
    case 'Integer':
      if (!isCloudEventInteger(value)) {
        errors.push({
          pointer: pointer(name),
          message: `${name} must be an Integer (whole number, 32-bit signed), got ${describeType(value)}`,
        });
      }
      return;
    case 'Boolean':
      if (typeof value !== 'boolean')
        errors.push({ pointer: pointer(name), message: `${name} must be a Boolean, got ${describeType(value)}` });
      return;
    case 'Binary':
      if (!(value instanceof Uint8Array))
        errors.push({ pointer: pointer(name), message: `${name} must be Binary (a Uint8Array), got ${describeType(value)}` });
      return;
    case 'String':
      checkString(errors, name, value, false);
      return;
    case 'URI':
    case 'URI-reference':
    case 'Timestamp': {
      if (!checkString(errors, name, value, false)) return;
      const problem = type === 'URI' ? uriProblem(value) : type === 'URI-reference' ? uriReferenceProblem(value) : timestampProblem(value);
      if (problem) errors.push({ pointer: pointer(name), message: `${name} ${problem}` });
      return;
    }
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return 'Uint8Array';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && !Number.isInteger(value)) return `the number ${value}`;
  return typeof value;
}

export interface ValidateCloudEventOptions {
  /** Declared extension types, checked on top of the String/Integer/Boolean/Binary rule. */
  readonly extensionTypes?: Readonly<Record<string, CloudEventAttributeType>>;
}

/**
 * Checks an in-memory event against CloudEvents 1.0: required attributes, attribute types,
 * extension names and values, and the types of the extensions Switchboard defines. Returns every
 * problem found (empty when valid).
 */
export function validateCloudEvent(event: unknown, options: ValidateCloudEventOptions = {}): FieldError[] {
  const errors: FieldError[] = [];
  if (typeof event !== 'object' || event === null || Array.isArray(event) || event instanceof Uint8Array) {
    errors.push({ pointer: '', message: `a CloudEvent must be an object, got ${describeType(event)}` });
    return errors;
  }
  const e = event as Record<string, unknown>;
  const specversion = e.specversion;
  if (specversion === undefined) errors.push({ pointer: '/specversion', message: 'specversion is required' });
  else if (specversion !== CLOUDEVENTS_SPEC_VERSION) {
    errors.push({
      pointer: '/specversion',
      message: `specversion ${JSON.stringify(specversion)} is not supported; only CloudEvents "1.0" is`,
    });
  }
  checkString(errors, 'id', e.id, true);
  if (checkString(errors, 'source', e.source, true)) {
    const problem = uriReferenceProblem(e.source);
    if (problem) errors.push({ pointer: '/source', message: `source must be a URI-reference: it ${problem}` });
  }
  checkString(errors, 'type', e.type, true);
  if (checkString(errors, 'datacontenttype', e.datacontenttype, false) && !mediaTypeOf(e.datacontenttype)) {
    errors.push({ pointer: '/datacontenttype', message: 'datacontenttype must be an RFC 2046 media type such as application/json' });
  }
  if (checkString(errors, 'dataschema', e.dataschema, false)) {
    const problem = uriProblem(e.dataschema);
    if (problem) errors.push({ pointer: '/dataschema', message: `dataschema must be a URI: it ${problem}` });
  }
  checkString(errors, 'subject', e.subject, false);
  if (checkString(errors, 'time', e.time, false)) {
    const problem = timestampProblem(e.time);
    if (problem) errors.push({ pointer: '/time', message: `time ${problem}` });
  }
  const extensions = e.extensions;
  if (extensions !== undefined) {
    if (typeof extensions !== 'object' || extensions === null || Array.isArray(extensions)) {
      errors.push({ pointer: '/extensions', message: 'extensions must be an object of attribute values' });
    } else {
      checkExtensions(errors, extensions as Record<string, unknown>, options.extensionTypes);
    }
  }
  return errors;
}

function checkExtensions(
  errors: FieldError[],
  extensions: Record<string, unknown>,
  declared: Readonly<Record<string, CloudEventAttributeType>> | undefined,
): void {
  for (const name of Object.keys(extensions)) {
    const value = extensions[name];
    if (value === undefined) continue;
    if (!isExtensionName(name)) {
      errors.push({
        pointer: pointer(name),
        message: `extension name ${JSON.stringify(name)} must use only lower-case letters a-z and digits 0-9`,
      });
      continue;
    }
    if (CLOUDEVENTS_RESERVED_NAMES.has(name)) {
      errors.push({ pointer: pointer(name), message: `${name} is a reserved attribute name and cannot be an extension` });
      continue;
    }
    const type = declared?.[name] ?? SWITCHBOARD_EXTENSION_TYPES[name];
    if (type) {
      checkTyped(errors, name, value, type);
    } else if (typeof value === 'string') {
      checkString(errors, name, value, false);
    } else if (typeof value === 'number') {
      checkTyped(errors, name, value, 'Integer');
    } else if (typeof value !== 'boolean' && !(value instanceof Uint8Array)) {
      errors.push({ pointer: pointer(name), message: `${name} must be a String, Integer, Boolean or Binary, got ${describeType(value)}` });
    }
  }
  if (typeof extensions.datahash === 'string' && !parseDataHash(extensions.datahash)) {
    errors.push({ pointer: '/datahash', message: 'datahash must be sha256:<64 hex digits>' });
  }
  if (typeof extensions.datasize === 'number' && extensions.datasize < 0) {
    errors.push({ pointer: '/datasize', message: 'datasize must not be negative' });
  }
}

/** Throws `SB_NOT_CLOUDEVENT` with every field error unless `event` is a valid CloudEvent. */
export function assertCloudEvent(event: unknown, options?: ValidateCloudEventOptions): asserts event is CloudEvent {
  const errors = validateCloudEvent(event, options);
  if (errors.length > 0) throw notCloudEvent(errors);
}

/** The `SB_NOT_CLOUDEVENT` error for a list of field errors. */
export function notCloudEvent(errors: readonly FieldError[], detail?: string): SwitchboardError {
  const first = errors[0];
  return new SwitchboardError('SB_NOT_CLOUDEVENT', {
    detail:
      detail ??
      (first ? `${first.pointer || '/'}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : undefined),
    errors,
  });
}
