import { readdirSync, readFileSync } from 'node:fs';
import { type CesqlErrorKind, type CesqlValue, compileExpression } from '@switchboard/cesql';
import { CLOUDEVENTS_CORE_ATTRIBUTES, type CloudEvent, isSwitchboardError } from '@switchboard/core';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

// The official CloudEvents SQL v1 TCK (test/tck/, see SOURCE.md), every case of every file.

interface TckCase {
  readonly name: string;
  readonly expression: string | number | boolean;
  readonly result?: CesqlValue;
  readonly error?: CesqlErrorKind;
  readonly event?: Record<string, unknown>;
  readonly eventOverrides?: Record<string, unknown>;
}

interface TckFile {
  readonly name: string;
  readonly tests: readonly TckCase[];
}

const dir = new URL('./tck/', import.meta.url);
const files = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .sort();

/** Any valid event, as the TCK allows when a case gives no `event`. */
const BASE_EVENT = { specversion: '1.0', id: 'tck-id', source: 'tck-source', type: 'tck.type' };

/** The TCK's events are JSON format events: core attributes and extensions side by side. */
function toCloudEvent(json: Record<string, unknown>): CloudEvent {
  const core: Record<string, unknown> = {};
  const extensions: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(json)) {
    if (CLOUDEVENTS_CORE_ATTRIBUTES.has(name)) core[name] = value;
    else extensions[name] = value;
  }
  return { ...core, extensions } as unknown as CloudEvent;
}

function outcome(testCase: TckCase): { value?: CesqlValue; error?: CesqlErrorKind } {
  let compiled: ReturnType<typeof compileExpression>;
  try {
    // An unquoted `expression: true` or `expression: -10` reads as a YAML boolean or number; the
    // expression is its text (as the Go SDK's runner, which reads it into a string, sees it).
    compiled = compileExpression(String(testCase.expression));
  } catch (error) {
    if (isSwitchboardError(error, 'SB_FILTER_INVALID')) return { error: 'parse' };
    throw error;
  }
  const event = toCloudEvent({ ...(testCase.event ?? BASE_EVENT), ...(testCase.eventOverrides ?? {}) });
  const { value, errors } = compiled.evaluate(event);
  return { value, ...(errors[0] === undefined ? {} : { error: errors[0].kind }) };
}

let cases = 0;
let passed = 0;

afterAll(() => {
  console.log(`CESQL TCK: ${files.length} files, ${cases} cases, ${passed} passed`);
});

it('finds the 18 files of the TCK', () => {
  expect(files).toHaveLength(18);
});

for (const file of files) {
  const suite = parseYaml(readFileSync(new URL(file, dir), 'utf8')) as TckFile;
  describe(`${file}: ${suite.name}`, () => {
    for (const testCase of suite.tests) {
      it(testCase.name, () => {
        cases++;
        const got = outcome(testCase);
        if (testCase.error === 'parse') {
          expect(got.error).toBe('parse');
        } else {
          expect(got.error).toBe(testCase.error);
          expect(got.value).toStrictEqual(testCase.result);
        }
        passed++;
      });
    }
  });
}
