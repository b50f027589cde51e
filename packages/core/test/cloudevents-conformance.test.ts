/**
 * Replays the official CloudEvents conformance cases (fixtures/cloudevents-conformance, copied from
 * github.com/cloudevents/conformance, see SOURCE.md there):
 * - features/*.feature through a small Gherkin reader and a step runner for exactly the steps they use;
 * - yaml/** events through the HTTP helpers, as the conformance tool's sender would put them on the wire.
 * Every step must have a definition: an unknown step fails the scenario, nothing is skipped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CloudEvent, SwitchboardError } from '@switchboard/core';
import { cloudEventFromHttp, cloudEventsBindings, cloudEventToHttp, decodeCloudEvent, isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'cloudevents-conformance');

// ---------------------------------------------------------------------------------------------
// Gherkin: Feature, Background, Scenario, Scenario Outline + Examples, steps with doc strings and tables.

interface Step {
  readonly keyword: string;
  readonly text: string;
  readonly docString?: string;
  readonly table?: string[][];
}

interface Scenario {
  readonly name: string;
  readonly steps: Step[];
}

interface Feature {
  readonly name: string;
  readonly tags: string[];
  readonly background: Step[];
  readonly scenarios: Scenario[];
}

const STEP = /^(Given|When|Then|And|But) (.+)$/;

function tableRow(line: string): string[] {
  const cells = line.split('|');
  return cells.slice(1, -1).map((cell) => cell.trim());
}

function substitute(text: string, row: Record<string, string>): string {
  return text.replace(/<([^>]+)>/g, (whole, name: string) => row[name] ?? whole);
}

function readFeature(source: string): Feature {
  const lines = source.split(/\r?\n/);
  const tags: string[] = [];
  let name = '';
  const background: Step[] = [];
  const scenarios: Scenario[] = [];
  let steps: Step[] | undefined;
  let outline: { name: string; steps: Step[]; examples: string[][] } | undefined;
  let inExamples = false;
  let inDescription = false;
  const flushOutline = (): void => {
    if (!outline) return;
    const [header, ...rows] = outline.examples;
    if (!header || rows.length === 0) throw new Error(`Scenario Outline "${outline.name}" has no Examples`);
    for (const cells of rows) {
      const row = Object.fromEntries(header.map((key, i) => [key, cells[i] ?? '']));
      scenarios.push({
        name: substitute(outline.name, row),
        steps: outline.steps.map((step) => ({
          keyword: step.keyword,
          text: substitute(step.text, row),
          ...(step.docString === undefined ? {} : { docString: substitute(step.docString, row) }),
          ...(step.table === undefined ? {} : { table: step.table.map((r) => r.map((cell) => substitute(cell, row))) }),
        })),
      });
    }
    outline = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('@')) {
      tags.push(...line.split(/\s+/));
      continue;
    }
    if (line.startsWith('Feature:')) {
      name = line.slice(8).trim();
      inDescription = true;
      continue;
    }
    if (line === 'Background:') {
      inDescription = false;
      steps = background;
      continue;
    }
    const scenario = /^Scenario( Outline)?: (.+)$/.exec(line);
    if (scenario) {
      inDescription = false;
      flushOutline();
      inExamples = false;
      steps = [];
      if (scenario[1]) outline = { name: scenario[2] ?? '', steps, examples: [] };
      else scenarios.push({ name: scenario[2] ?? '', steps });
      continue;
    }
    if (line === 'Examples:') {
      if (!outline) throw new Error(`line ${i + 1}: Examples outside a Scenario Outline`);
      inExamples = true;
      continue;
    }
    if (line.startsWith('|')) {
      if (inExamples && outline) outline.examples.push(tableRow(line));
      else {
        const last = steps?.at(-1);
        if (!steps || !last) throw new Error(`line ${i + 1}: table without a step`);
        steps[steps.length - 1] = { ...last, table: [...(last.table ?? []), tableRow(line)] };
      }
      continue;
    }
    if (line === '"""') {
      const indent = raw.indexOf('"""');
      const content: string[] = [];
      for (i++; i < lines.length && (lines[i] ?? '').trim() !== '"""'; i++) {
        const text = lines[i] ?? '';
        if (text.slice(0, indent).trim() !== '') throw new Error(`line ${i + 1}: doc string line less indented than its """`);
        content.push(text.slice(indent));
      }
      if (i >= lines.length) throw new Error('unterminated doc string');
      const last = steps?.at(-1);
      if (!steps || !last) throw new Error(`line ${i + 1}: doc string without a step`);
      steps[steps.length - 1] = { ...last, docString: content.join('\n') };
      continue;
    }
    const step = STEP.exec(line);
    if (step && steps) {
      steps.push({ keyword: step[1] ?? '', text: step[2] ?? '' });
      continue;
    }
    if (inDescription) continue;
    throw new Error(`line ${i + 1}: unsupported Gherkin: ${line}`);
  }
  flushOutline();
  return { name, tags, background, scenarios };
}

// ---------------------------------------------------------------------------------------------
// YAML: the subset the conformance event files use. Documents split by `---`, full-line comments,
// nested block mappings (`key: value`, also `key : value`), plain and quoted scalars (always
// strings, as the conformance tool reads them into string fields) and literal block scalars `|`.
// Anything else (sequences, flow collections, anchors, tabs) is refused loudly.

type YamlValue = string | { [key: string]: YamlValue };

function indentOf(line: string): number {
  let n = 0;
  while (line.charCodeAt(n) === 0x20) n++;
  if (line.charCodeAt(n) === 0x09) throw new Error('tabs are not supported in indentation');
  return n;
}

function isSkippable(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === '' || trimmed.startsWith('#');
}

function scalar(text: string, where: string): string {
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) throw new Error(`${where}: unterminated double-quoted scalar`);
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new Error(`${where}: unterminated single-quoted scalar`);
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[[{&*!|>%@`-]/.test(text)) throw new Error(`${where}: unsupported YAML scalar ${text}`);
  const comment = text.indexOf(' #');
  return (comment === -1 ? text : text.slice(0, comment)).trimEnd();
}

function blockScalar(lines: string[], start: number, parentIndent: number, header: string): [string, number] {
  const chomp = header === '|-' ? 'strip' : header === '|+' ? 'keep' : header === '|' ? 'clip' : undefined;
  if (!chomp) throw new Error(`unsupported block scalar header ${header}`);
  let i = start;
  let indent = -1;
  const content: string[] = [];
  for (; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') {
      content.push('');
      continue;
    }
    const n = indentOf(line);
    if (n <= parentIndent) break;
    if (indent === -1) indent = n;
    if (n < indent) throw new Error(`line ${i + 1}: block scalar line less indented than its first line`);
    content.push(line.slice(indent));
  }
  let text = content.join('\n');
  const body = text.replace(/\n+$/, '');
  if (chomp === 'strip') text = body;
  else if (chomp === 'clip') text = body === '' ? '' : `${body}\n`;
  else text = `${text}\n`;
  return [text, i];
}

function mapping(lines: string[], start: number, indent: number): [Record<string, YamlValue>, number] {
  const out: Record<string, YamlValue> = {};
  let i = start;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (isSkippable(line)) {
      i++;
      continue;
    }
    const n = indentOf(line);
    if (n < indent) break;
    if (n > indent) throw new Error(`line ${i + 1}: unexpected indentation`);
    const content = line.slice(n);
    if (content.startsWith('- ') || content === '-') throw new Error(`line ${i + 1}: sequences are not supported`);
    const colon = content.search(/:( |$)/);
    if (colon <= 0) throw new Error(`line ${i + 1}: expected "key: value"`);
    const key = content.slice(0, colon).trim();
    const rest = content.slice(colon + 1).trim();
    if (key in out) throw new Error(`line ${i + 1}: duplicate key ${key}`);
    if (rest.startsWith('|')) {
      [out[key], i] = blockScalar(lines, i + 1, n, rest);
    } else if (rest === '') {
      let next = i + 1;
      while (next < lines.length && isSkippable(lines[next] ?? '')) next++;
      const childIndent = next < lines.length ? indentOf(lines[next] ?? '') : 0;
      if (childIndent <= n) {
        out[key] = '';
        i++;
      } else {
        [out[key], i] = mapping(lines, next, childIndent);
      }
    } else {
      out[key] = scalar(rest, `line ${i + 1}`);
      i++;
    }
  }
  return [out, i];
}

function readYamlDocuments(source: string): Record<string, YamlValue>[] {
  const documents: string[][] = [[]];
  for (const line of source.split(/\r?\n/)) {
    if (line === '---') documents.push([]);
    else documents.at(-1)?.push(line);
  }
  return documents
    .filter((lines) => lines.some((line) => !isSkippable(line)))
    .map((lines) => {
      const [doc, end] = mapping(lines, 0, 0);
      if (end < lines.length && lines.slice(end).some((line) => !isSkippable(line))) throw new Error('trailing content');
      return doc;
    });
}

// ---------------------------------------------------------------------------------------------
// Step runner.

interface World {
  protocol?: 'http' | 'kafka';
  headers?: Record<string, string>;
  body?: Uint8Array;
  event?: CloudEvent;
}

function parseRawHttpRequest(raw: string): { headers: Record<string, string>; body: Uint8Array } {
  const split = raw.indexOf('\n\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const [requestLine, ...headerLines] = head.split('\n');
  expect(requestLine).toMatch(/^[A-Z]+ \S+ HTTP\/1\.1$/);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    expect(colon).toBeGreaterThan(0);
    headers[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  const body = Buffer.from(split === -1 ? '' : raw.slice(split + 2), 'utf8');
  const length = Object.entries(headers).find(([key]) => key.toLowerCase() === 'content-length')?.[1];
  // The request is replayed byte for byte: its body must be exactly Content-Length long.
  if (length !== undefined) expect(body.byteLength).toBe(Number(length));
  return { headers, body };
}

function tableToRecord(table: string[][] | undefined): Record<string, string> {
  expect(table?.[0]).toEqual(['key', 'value']);
  return Object.fromEntries((table ?? []).slice(1).map(([key, value]) => [key ?? '', value ?? '']));
}

function attributeOf(event: CloudEvent, name: string): unknown {
  return name in event ? (event as unknown as Record<string, unknown>)[name] : event.extensions?.[name];
}

type StepDefinition = readonly [RegExp, (world: World, step: Step) => void];

const stepDefinitions: StepDefinition[] = [
  [
    /^(HTTP|Kafka) Protocol Binding is supported$/,
    (world, step) => {
      world.protocol = step.text.startsWith('HTTP') ? 'http' : 'kafka';
    },
  ],
  [
    /^an HTTP request$/,
    (world, step) => {
      expect(step.docString).toBeDefined();
      Object.assign(world, parseRawHttpRequest(step.docString ?? ''));
    },
  ],
  [
    /^a Kafka message with payload:$/,
    (world, step) => {
      expect(step.docString).toBeDefined();
      world.body = Buffer.from(step.docString ?? '', 'utf8');
    },
  ],
  [
    /^Kafka headers:$/,
    (world, step) => {
      world.headers = tableToRecord(step.table);
    },
  ],
  [
    /^parsed as HTTP request$/,
    (world) => {
      expect(world.protocol).toBe('http');
      const received = cloudEventFromHttp(world.headers ?? {}, world.body);
      if (received.mode === 'batch') throw new Error('expected a single event');
      world.event = received.event;
    },
  ],
  [
    /^parsed as Kafka message$/,
    (world) => {
      expect(world.protocol).toBe('kafka');
      world.event = decodeCloudEvent(world.headers ?? {}, world.body ?? new Uint8Array(0), cloudEventsBindings.kafka);
    },
  ],
  [
    /^the attributes are:$/,
    (world, step) => {
      const event = world.event;
      if (!event) throw new Error('no event was parsed');
      const expected = tableToRecord(step.table);
      expect(Object.keys(expected).length).toBeGreaterThan(0);
      for (const [name, value] of Object.entries(expected)) expect(attributeOf(event, name), name).toBe(value);
    },
  ],
  [
    /^the data is equal to the following JSON:$/,
    (world, step) => {
      expect(world.event?.data).toEqual(JSON.parse(step.docString ?? ''));
    },
  ],
];

function runStep(world: World, step: Step): void {
  const definition = stepDefinitions.find(([pattern]) => pattern.test(step.text));
  if (!definition) throw new Error(`no step definition for "${step.keyword} ${step.text}"`);
  definition[1](world, step);
}

const featureFiles = readdirSync(join(FIXTURES, 'features')).filter((file) => file.endsWith('.feature'));

describe('CloudEvents conformance: feature files', () => {
  it('finds both protocol binding features and reads every scenario of them', () => {
    expect(featureFiles.sort()).toEqual(['http-protocol-binding.feature', 'kafka-protocol-binding.feature']);
    const counts = featureFiles.map((file) => readFeature(readFileSync(join(FIXTURES, 'features', file), 'utf8')).scenarios.length);
    // 2 Scenario Outlines x 2 Examples for HTTP; 1 Scenario + 1 Outline x 2 Examples for Kafka (SOURCE.md).
    expect(counts).toEqual([4, 3]);
  });

  for (const file of featureFiles) {
    const feature = readFeature(readFileSync(join(FIXTURES, 'features', file), 'utf8'));
    describe(feature.name, () => {
      for (const scenario of feature.scenarios) {
        it(scenario.name, () => {
          const world: World = {};
          for (const step of [...feature.background, ...scenario.steps]) runStep(world, step);
          expect(world.event).toBeDefined();
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// YAML events.

interface YamlEvent {
  readonly file: string;
  readonly mode: 'binary' | 'structured' | undefined;
  readonly attributes: Record<string, string>;
  readonly extensions: Record<string, string>;
  readonly transport: Record<string, string>;
  readonly data: string;
}

function strings(value: YamlValue | undefined, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value === 'string') throw new Error(`${what} must be a mapping`);
  const out: Record<string, string> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (typeof inner !== 'string') throw new Error(`${what}.${key} must be a scalar`);
    out[key] = inner;
  }
  return out;
}

function yamlEvents(relative: string): YamlEvent[] {
  return readYamlDocuments(readFileSync(join(FIXTURES, relative), 'utf8')).map((doc) => {
    const context = doc.ContextAttributes;
    if (context === undefined || typeof context === 'string') throw new Error(`${relative}: ContextAttributes missing`);
    const { Extensions, ...attributes } = context;
    const mode = doc.Mode;
    if (mode !== undefined && mode !== 'binary' && mode !== 'structured') throw new Error(`${relative}: unknown Mode ${String(mode)}`);
    const data = doc.Data ?? '';
    if (typeof data !== 'string') throw new Error(`${relative}: Data must be a scalar`);
    return {
      file: relative,
      mode,
      attributes: strings(attributes, 'ContextAttributes'),
      extensions: strings(Extensions, 'Extensions'),
      transport: strings(doc.TransportExtensions, 'TransportExtensions'),
      data,
    };
  });
}

/**
 * The HTTP request the conformance tool sends for an event: `ce-` headers, `Content-Type`, the
 * transport extensions as plain headers, the data as the body. Like the tool (and any HTTP stack),
 * header values are trimmed and empty ones left out.
 */
function referenceBinaryRequest(event: YamlEvent): { headers: Record<string, string>; body: Uint8Array } {
  const headers: Record<string, string> = {};
  const add = (name: string, value: string | undefined): void => {
    const trimmed = value?.trim();
    if (trimmed) headers[name] = trimmed;
  };
  for (const [name, value] of Object.entries(event.attributes)) add(name === 'datacontenttype' ? 'Content-Type' : `ce-${name}`, value);
  for (const [name, value] of Object.entries(event.extensions)) add(`ce-${name}`, value);
  for (const [name, value] of Object.entries(event.transport)) add(name, value);
  return { headers, body: Buffer.from(event.data, 'utf8') };
}

type Kind = 'json' | 'text' | 'bytes';

function kindOf(contentType: string | undefined, mode: 'binary' | 'structured'): Kind {
  if (contentType === undefined) return mode === 'structured' ? 'json' : 'bytes';
  const essence = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (essence === 'application/json' || essence.endsWith('+json')) return 'json';
  if (essence.startsWith('text/') || essence.endsWith('/xml') || essence.endsWith('+xml')) return 'text';
  return 'bytes';
}

/** The same event as a structured-mode JSON document, as a sender writes it by the JSON format spec. */
function referenceStructuredRequest(event: YamlEvent): { headers: Record<string, string>; body: Uint8Array } {
  const document: Record<string, unknown> = {};
  for (const [name, value] of Object.entries({ ...event.attributes, ...event.extensions })) document[name] = value.trim();
  const kind = kindOf(event.attributes.datacontenttype, 'structured');
  if (kind === 'json') document.data = JSON.parse(event.data);
  else if (kind === 'text') document.data = event.data;
  else document.data_base64 = Buffer.from(event.data, 'utf8').toString('base64');
  return {
    headers: { 'Content-Type': 'application/cloudevents+json', ...event.transport },
    body: Buffer.from(JSON.stringify(document), 'utf8'),
  };
}

function expectedData(event: YamlEvent, mode: 'binary' | 'structured'): unknown {
  const kind = kindOf(event.attributes.datacontenttype, mode);
  if (kind === 'json') return JSON.parse(event.data);
  if (kind === 'text') return event.data;
  return new Uint8Array(Buffer.from(event.data, 'utf8'));
}

function single(received: ReturnType<typeof cloudEventFromHttp>): CloudEvent {
  if (received.mode === 'batch') throw new Error('expected a single event');
  return received.event;
}

function catchError(run: () => unknown): SwitchboardError {
  try {
    run();
  } catch (error) {
    if (isSwitchboardError(error)) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const v1Files = ['yaml/v1.yaml', 'yaml/v1.0/v1_minimum.yaml'];
const v03Files = ['yaml/v03.yaml', 'yaml/v0.3/v03_minimum.yaml'];

describe('CloudEvents conformance: YAML events', () => {
  it('reads every event of the YAML files', () => {
    expect(v1Files.map((file) => yamlEvents(file).length)).toEqual([2, 6]);
    expect(v03Files.map((file) => yamlEvents(file).length)).toEqual([1, 6]);
  });

  for (const file of v1Files) {
    for (const [index, event] of yamlEvents(file).entries()) {
      const modes = event.mode ? [event.mode] : (['binary', 'structured'] as const);
      for (const mode of modes) {
        it(`${file} #${index + 1} (${event.attributes.id}) in ${mode} mode`, () => {
          const request = mode === 'binary' ? referenceBinaryRequest(event) : referenceStructuredRequest(event);
          const received = cloudEventFromHttp(request.headers, request.body);
          expect(received.mode).toBe(mode);
          const got = single(received);
          for (const [name, value] of Object.entries(event.attributes)) expect(attributeOf(got, name), name).toBe(value.trim());
          const extensions = Object.entries(event.extensions).map(([name, value]) => [name, value.trim()]);
          expect(got.extensions).toEqual(extensions.length === 0 ? undefined : Object.fromEntries(extensions));
          expect(got.data).toEqual(expectedData(event, mode));
          // Transport extensions stay transport headers.
          for (const name of Object.keys(event.transport)) expect(attributeOf(got, name)).toBeUndefined();
          // And our own encoder gives back the same event through HTTP, in both modes. Binary mode
          // states the JSON format's implied `application/json` explicitly, as a Content-Type.
          for (const again of ['binary', 'structured'] as const) {
            const wire = cloudEventToHttp(got, { mode: again });
            const implied =
              again === 'binary' && got.datacontenttype === undefined && got.data !== undefined && !(got.data instanceof Uint8Array);
            expect(single(cloudEventFromHttp(wire.headers, wire.body))).toEqual(
              implied ? { ...got, datacontenttype: 'application/json' } : got,
            );
          }
        });
      }
    }
  }

  for (const file of v03Files) {
    for (const [index, event] of yamlEvents(file).entries()) {
      for (const mode of ['binary', 'structured'] as const) {
        it(`${file} #${index + 1} (specversion 0.3) is rejected clearly in ${mode} mode`, () => {
          const request = mode === 'binary' ? referenceBinaryRequest(event) : referenceStructuredRequest(event);
          const error = catchError(() => cloudEventFromHttp(request.headers, request.body));
          expect(error.code).toBe('SB_NOT_CLOUDEVENT');
          expect(error.status).toBe(400);
          expect(error.errors).toContainEqual({
            pointer: '/specversion',
            message: 'specversion "0.3" is not supported; only CloudEvents "1.0" is',
          });
        });
      }
    }
  }
});

describe('conformance readers', () => {
  it('read the upstream spelling of the YAML files the same way (key : value, deeper block indentation)', () => {
    const upstream = [
      'ContextAttributes:',
      '  specversion: 1.0',
      '  Extensions:',
      '    comexampleextension1 : "value"',
      '    comexampleextension2 : |',
      '      {"othervalue": 5}',
      'Data: |',
      '    {"world":"hello"}',
      '',
    ].join('\n');
    expect(readYamlDocuments(upstream)).toEqual([
      {
        ContextAttributes: {
          specversion: '1.0',
          Extensions: { comexampleextension1: 'value', comexampleextension2: '{"othervalue": 5}\n' },
        },
        Data: '{"world":"hello"}\n',
      },
    ]);
  });

  it('refuse YAML they do not understand instead of misreading it', () => {
    expect(() => readYamlDocuments('a:\n  - 1\n')).toThrow(/sequences/);
    expect(() => readYamlDocuments('a: {b: 1}\n')).toThrow(/unsupported YAML scalar/);
    expect(() => readYamlDocuments('a: &x 1\n')).toThrow(/unsupported YAML scalar/);
  });

  it('refuse Gherkin they do not understand, and steps without a definition fail', () => {
    expect(() => readFeature('Feature: x\n  Scenario: y\n    Given z\n  Rule: r\n')).toThrow(/unsupported Gherkin/);
    expect(() => runStep({}, { keyword: 'Given', text: 'an AMQP message' })).toThrow(/no step definition/);
  });

  it('expand Scenario Outline placeholders in doc strings and tables', () => {
    const feature = readFeature(
      [
        'Feature: f',
        '  Scenario Outline: s <x>',
        '    Given a',
        '      """',
        '      v=<x>',
        '      """',
        '    Then b:',
        '      | key | value |',
        '      | k   | <x>   |',
        '    Examples:',
        '      | x |',
        '      | 1 |',
        '      | 2 |',
      ].join('\n'),
    );
    expect(feature.scenarios.map((s) => [s.name, s.steps[0]?.docString, s.steps[1]?.table?.[1]])).toEqual([
      ['s 1', 'v=1', ['k', '1']],
      ['s 2', 'v=2', ['k', '2']],
    ]);
  });
});
