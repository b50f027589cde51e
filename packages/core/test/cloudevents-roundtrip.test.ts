/**
 * Property-style round trips over random events (seeded, so a failure is reproducible): every
 * binding in binary mode, structured mode and the HTTP helpers give back an equal event, and bytes
 * that are not UTF-8 survive every path.
 */

import { isDeepStrictEqual } from 'node:util';
import type { CloudEvent, CloudEventAttributeType, CloudEventAttributeValue } from '@switchboard/core';
import {
  cloudEventFromHttp,
  cloudEventsBindings,
  cloudEventToHttp,
  decodeBinary,
  decodeStructured,
  encodeBinary,
  encodeStructured,
  validateCloudEvent,
} from '@switchboard/core';
import { describe, expect, it } from 'vitest';

const SEED = 0x5eed_c10d;
const RUNS = 200;

/**
 * Strict deep equality (prototypes included, so a Buffer is not a Uint8Array and a missing member
 * is not an undefined one) over all samples; reports the first few that differ.
 */
function expectAllEqual(pairs: Iterable<readonly [unknown, unknown]>): void {
  const differing: { expected: unknown; actual: unknown }[] = [];
  let count = 0;
  for (const [actual, expected] of pairs) {
    count++;
    if (!isDeepStrictEqual(actual, expected) && differing.length < 3) differing.push({ expected, actual });
  }
  expect(count).toBeGreaterThan(0);
  expect(differing).toEqual([]);
}

/** mulberry32: a small deterministic PRNG. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  bool(): boolean {
    return this.next() < 0.5;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  /** A valid CloudEvents String: printable ASCII incl. space, quote and percent, Latin, CJK, emoji. */
  string(min = 1, max = 24): string {
    const pieces = ['a', 'Z', '0', ' ', '"', '%', '/', ':', '-', '~', 'é', 'ß', '€', '中', '😀', '\u00a0', '=', ';', ','];
    let out = '';
    const length = this.int(min, max);
    for (let i = 0; i < length; i++) out += this.pick(pieces);
    return out;
  }
  bytes(max = 64): Uint8Array {
    const out = new Uint8Array(this.int(1, max));
    for (let i = 0; i < out.length; i++) out[i] = this.int(0, 255);
    // Make sure it is not valid UTF-8.
    out[this.int(0, out.length - 1)] = 0xff;
    return out;
  }
  name(): string {
    const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let out = '';
    for (let i = this.int(1, 20); i > 0; i--) out += letters[this.int(0, letters.length - 1)];
    return out;
  }
  json(depth = 0): unknown {
    switch (this.int(0, depth > 2 ? 3 : 5)) {
      case 0:
        return this.int(-1e6, 1e6);
      case 1:
        return this.string(0, 12);
      case 2:
        return this.pick([true, false, null, 1.5e-7, -2.25]);
      case 3:
        return this.next() * 1000;
      case 4:
        return Array.from({ length: this.int(0, 4) }, () => this.json(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: this.int(0, 4) }, () => [this.string(1, 8), this.json(depth + 1)]));
    }
  }
  time(): string {
    const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
    const date = `${pad(this.int(1970, 2100), 4)}-${pad(this.int(1, 12))}-${pad(this.int(1, 28))}T${pad(this.int(0, 23))}:${pad(this.int(0, 59))}:${pad(this.int(0, 59))}`;
    const fraction = this.bool() ? `.${pad(this.int(0, 999_999), 6)}` : '';
    const zone = this.pick(['Z', '+02:00', '-11:30', 'z']);
    return date + fraction + zone;
  }
}

interface Sample {
  readonly event: CloudEvent;
  readonly extensionTypes: Record<string, CloudEventAttributeType>;
}

function randomEvent(g: Gen): Sample {
  const event: Record<string, unknown> = {
    specversion: '1.0',
    id: g.string(),
    source: g.pick([
      '/orders',
      'https://example.com/a?b=c#d',
      'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
      'service-a',
      '1-555-123-4567',
      '//host/p%20q',
    ]),
    type: `com.example.${g.name()}`,
  };
  if (g.bool()) event.subject = g.string();
  if (g.bool()) event.time = g.time();
  if (g.bool()) event.dataschema = `https://schemas.example.com/${g.name()}.json`;
  switch (g.int(0, 5)) {
    case 0:
      event.datacontenttype = g.pick(['application/json', 'application/json; charset=utf-8', 'application/vnd.example+json']);
      event.data = g.json();
      break;
    case 1:
      event.datacontenttype = g.pick(['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'text/csv; charset=UTF-8']);
      event.data = g.string(0, 40);
      break;
    case 2:
      event.datacontenttype = g.pick(['application/octet-stream', 'image/png', 'application/x-protobuf']);
      event.data = g.bytes();
      break;
    case 3:
      // Bytes without a content type.
      event.data = g.bytes();
      break;
    case 4:
      // A content type and no data.
      event.datacontenttype = 'application/json';
      break;
    default:
      break;
  }
  const extensions: Record<string, CloudEventAttributeValue> = {};
  const extensionTypes: Record<string, CloudEventAttributeType> = {};
  for (let i = g.int(0, 4); i > 0; i--) {
    const name = `x${g.name()}`.slice(0, 20);
    const kind = g.int(0, 3);
    if (kind === 0) {
      extensions[name] = g.string();
    } else if (kind === 1) {
      extensions[name] = g.int(-2_147_483_648, 2_147_483_647);
      extensionTypes[name] = 'Integer';
    } else if (kind === 2) {
      extensions[name] = g.bool();
      extensionTypes[name] = 'Boolean';
    } else {
      extensions[name] = g.bytes(16);
      extensionTypes[name] = 'Binary';
    }
  }
  if (g.bool()) extensions.traceparent = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
  if (g.bool()) {
    extensions.dataref = `blob://bucket/${g.name()}`;
    extensions.datasize = g.int(0, 2_147_483_647);
    extensions.datahash = `sha256:${'0f'.repeat(32)}`;
  }
  if (Object.keys(extensions).length > 0) event.extensions = extensions;
  return { event: event as unknown as CloudEvent, extensionTypes };
}

const samples: Sample[] = [];
{
  const g = new Gen(random(SEED));
  for (let i = 0; i < RUNS; i++) samples.push(randomEvent(g));
}

describe('random events round-trip', () => {
  it('are valid events to begin with', () => {
    for (const { event } of samples) expect(validateCloudEvent(event)).toEqual([]);
  });

  for (const binding of Object.values(cloudEventsBindings)) {
    it(`through binary mode on the ${binding.name} binding`, () => {
      expectAllEqual(
        samples.map(({ event, extensionTypes }) => {
          const { headers, body } = encodeBinary(event, binding);
          return [decodeBinary(headers, body, binding, { extensionTypes }), event] as const;
        }),
      );
    });
  }

  it('through structured mode', () => {
    expectAllEqual(
      samples.map(({ event, extensionTypes }) => {
        const { headers, body } = encodeStructured(event);
        return [decodeStructured(body, headers['content-type'], { extensionTypes }), event] as const;
      }),
    );
  });

  it('through the HTTP helpers in both modes, with header values in printable ASCII', () => {
    const printable = /^[\x21-\x7e][\x20-\x7e]*$/;
    const pairs: (readonly [unknown, unknown])[] = [];
    for (const { event, extensionTypes } of samples) {
      for (const mode of ['binary', 'structured'] as const) {
        const { headers, body } = cloudEventToHttp(event, { mode });
        pairs.push([Object.values(headers).filter((value) => !printable.test(value)), []]);
        pairs.push([cloudEventFromHttp(headers, body, { extensionTypes }), { mode, event }]);
      }
    }
    expectAllEqual(pairs);
  });

  it('keep bytes that are not UTF-8 intact on every path', () => {
    const binaries = samples.filter(({ event }) => event.data instanceof Uint8Array);
    expect(binaries.length).toBeGreaterThan(50);
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const pairs: (readonly [unknown, unknown])[] = [];
    for (const { event } of binaries) {
      const data = event.data as Uint8Array;
      expect(() => utf8.decode(data)).toThrow();
      const structured = encodeStructured(event);
      pairs.push([decodeStructured(structured.body).data, data]);
      for (const binding of Object.values(cloudEventsBindings)) {
        const binary = encodeBinary(event, binding);
        pairs.push([decodeBinary(binary.headers, binary.body, binding).data, data]);
      }
    }
    expectAllEqual(pairs);
  });
});
