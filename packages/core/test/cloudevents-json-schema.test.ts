/**
 * Cross-checks the structured codec against the official CloudEvents JSON Schema
 * (fixtures/cloudevents-json-schema, see SOURCE.md there): what we write validates against it, and
 * documents it refuses are refused by our decoder too. The schema uses only `type`, `minLength`,
 * `format`, `required`, `$ref` and the `contentEncoding` annotation; the small evaluator below
 * implements exactly those, with formats checked by the WHATWG URL parser and `Date`, independent
 * of the codec's own checks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudEvent } from '@switchboard/core';
import { createCloudEvent, decodeStructured, encodeStructured, isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

interface Schema {
  readonly $ref?: string;
  readonly type?: string | string[];
  readonly minLength?: number;
  readonly format?: string;
  readonly required?: string[];
  readonly properties?: Record<string, Schema>;
  readonly definitions?: Record<string, Schema>;
  readonly [keyword: string]: unknown;
}

const root = JSON.parse(
  readFileSync(join(import.meta.dirname, 'fixtures', 'cloudevents-json-schema', 'cloudevents.json'), 'utf8'),
) as Schema;
const KNOWN = new Set([
  '$schema',
  '$ref',
  'description',
  'examples',
  'type',
  'minLength',
  'format',
  'required',
  'properties',
  'definitions',
  'contentEncoding',
]);

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function formatHolds(format: string, value: string): boolean {
  switch (format) {
    case 'uri':
      return URL.canParse(value);
    case 'uri-reference':
      return URL.canParse(value, 'http://base.invalid/');
    case 'date-time':
      return RFC3339.test(value) && !Number.isNaN(Date.parse(value));
    default:
      throw new Error(`format ${format} is not supported by this test validator`);
  }
}

function schemaErrors(schema: Schema, value: unknown, at = ''): string[] {
  for (const keyword of Object.keys(schema))
    if (!KNOWN.has(keyword)) throw new Error(`schema keyword ${keyword} is not supported by this test validator`);
  if (schema.$ref) {
    const name = schema.$ref.replace('#/definitions/', '');
    const target = root.definitions?.[name];
    if (!target) throw new Error(`unresolved ${schema.$ref}`);
    return schemaErrors(target, value, at);
  }
  const errors: string[] = [];
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = jsonType(value);
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number'))) return [`${at}: type ${actual}`];
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: minLength`);
    if (schema.format && !formatHolds(schema.format, value)) errors.push(`${at}: format ${schema.format}`);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const name of schema.required ?? []) if (!(name in object)) errors.push(`${at}/${name}: required`);
    for (const [name, inner] of Object.entries(schema.properties ?? {})) {
      if (name in object) errors.push(...schemaErrors(inner, object[name], `${at}/${name}`));
    }
  }
  return errors;
}

const events: CloudEvent[] = [
  createCloudEvent({ type: 'com.example.a', source: 'service-a' }),
  createCloudEvent({
    type: 'com.example.b',
    source: 'https://example.com/x',
    subject: 's',
    data: { a: [1, null] },
    dataschema: 'https://example.com/s.json',
  }),
  createCloudEvent({
    type: 'com.example.c',
    source: 'urn:x:y',
    data: new Uint8Array([0, 255, 7]),
    extensions: { traceparent: '00-x', datasize: 3 },
  }),
  createCloudEvent({
    type: 'com.example.d',
    source: '/p',
    datacontenttype: 'text/plain',
    data: 'hello',
    time: '1985-04-12T23:20:50.52-04:00',
  }),
];

function rejectedByCodec(document: Record<string, unknown>): boolean {
  try {
    decodeStructured(Buffer.from(JSON.stringify(document)));
    return false;
  } catch (error) {
    if (isSwitchboardError(error, 'SB_NOT_CLOUDEVENT')) return true;
    throw error;
  }
}

describe('official CloudEvents JSON Schema', () => {
  it('accepts every document the structured encoder writes', () => {
    for (const event of events) {
      const document = JSON.parse(Buffer.from(encodeStructured(event).body).toString('utf8'));
      expect(schemaErrors(root, document)).toEqual([]);
    }
  });

  const valid = { specversion: '1.0', id: 'a', source: '/s', type: 't' };
  it.each([
    ['a missing id', { specversion: '1.0', source: '/s', type: 't' }],
    ['an empty id', { ...valid, id: '' }],
    ['an empty source', { ...valid, source: '' }],
    ['a numeric specversion', { ...valid, specversion: 1 }],
    ['an empty type', { ...valid, type: '' }],
    ['a relative dataschema', { ...valid, dataschema: '/schema.json' }],
    ['an empty subject', { ...valid, subject: '' }],
    ['a time that is not RFC 3339', { ...valid, time: '05 Apr 2018 17:31' }],
    ['a numeric datacontenttype', { ...valid, datacontenttype: 5 }],
    ['a numeric data_base64', { ...valid, data_base64: 5 }],
  ])('and our decoder both refuse %s', (_name, document) => {
    expect(schemaErrors(root, document)).not.toEqual([]);
    expect(rejectedByCodec(document)).toBe(true);
  });
});
