import type { CloudEventsBinding } from '@switchboard/core';
import {
  cloudEventsBindings,
  createSigner,
  decodeBinary,
  decodeCloudEvent,
  decodeStructured,
  defineContract,
  event,
  subscribeTracing,
  tracing,
  withMode,
} from '@switchboard/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Address } from '../src/addressing.js';
import { eventsTopic, eventType } from '../src/addressing.js';
import { buildOutgoing, describeOutgoing, encodePlainBothWays, type OutgoingConfig } from '../src/outgoing.js';

const contract = defineContract({
  name: 'ticker',
  events: {
    tick: event({ data: z.object({ seq: z.number() }) }),
    ping: event({}),
  },
});

function address(name: 'tick' | 'ping'): Address {
  return { kind: 'event', contract, name, type: eventType(contract, name), topic: eventsTopic(contract) };
}

function config(binding: CloudEventsBinding, signed = false): OutgoingConfig {
  return { service: 'ticker', binding, blobs: undefined, thresholdBytes: 1024, expiresInMs: undefined, ...(signed ? { signer } : {}) };
}

const signer = createSigner({ id: 'ticker-1', algorithm: 'hs256', secret: 't'.repeat(32) });

const shape = { schema: contract.events.tick.data, attachments: false };

describe('buildOutgoing one-pass build', () => {
  for (const binding of [cloudEventsBindings.nats, cloudEventsBindings.amqp, cloudEventsBindings.kafka, cloudEventsBindings.http]) {
    it(`gives later plain messages the headers of the first, full build (${binding.name} binding)`, async () => {
      const cfg = config(binding);
      const first = await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
      const later = await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }, { key: 'k1' });
      expect(Object.keys(later.headers)).toEqual(Object.keys(first.headers));
      expect(first.headers[`${binding.prefix}type`]).toBe('ticker.tick');
      expect(later.id).not.toBe(first.id);
      expect(later.key).toBe('k1');
      expect(later.topic).toBe('ticker.events');
      const decoded = decodeBinary(later.headers, later.body, binding);
      expect(decoded).toMatchObject({ specversion: '1.0', id: later.id, source: 'ticker', type: 'ticker.tick', data: { seq: 2 } });
      expect(decoded.datacontenttype).toBe('application/json');
      expect(decoded.extensions?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(Date.parse(decoded.time ?? '')).not.toBeNaN();
    });
  }

  it('keeps the caller trace and builds payload-free events with an empty body and no content-type', async () => {
    const cfg = config(cloudEventsBindings.plain);
    const ping = { schema: undefined, attachments: false };
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    await buildOutgoing(cfg, address('ping'), ping, undefined);
    const later = await buildOutgoing(cfg, address('ping'), ping, undefined, { traceparent: parent });
    expect(later.body.byteLength).toBe(0);
    expect(later.headers['content-type']).toBeUndefined();
    const decoded = decodeBinary(later.headers, later.body, cloudEventsBindings.plain);
    expect(decoded.data).toBeUndefined();
    expect(decoded.extensions?.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
  });

  it('takes the full path again for a caller-chosen id, subject or tracestate', async () => {
    const cfg = config(cloudEventsBindings.nats);
    await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
    const custom = await buildOutgoing(
      cfg,
      address('tick'),
      shape,
      { seq: 2 },
      { id: 'order-7', subject: 'caf\u00e9 7', tracestate: 'a=1' },
    );
    expect(custom.id).toBe('order-7');
    expect(custom.headers['ce-subject']).toBe('caf%C3%A9%207');
    expect(custom.headers['ce-tracestate']).toBe('a=1');
    const decoded = decodeBinary(custom.headers, custom.body, cloudEventsBindings.nats);
    expect(decoded.subject).toBe('caf\u00e9 7');
  });

  it('still refuses data that does not match the schema after the first build', async () => {
    const cfg = config(cloudEventsBindings.plain);
    await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
    await expect(buildOutgoing(cfg, address('tick'), shape, { seq: 'x' })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
  });
});

describe('buildOutgoing in structured mode', () => {
  const structured = (): OutgoingConfig => config(withMode(cloudEventsBindings.nats, 'structured'));
  const ping = { schema: undefined, attachments: false };

  it('writes one application/cloudevents+json document, the one-pass build member for member like the full one', async () => {
    const cfg = structured();
    const first = await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
    const later = await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }, { key: 'k1' });
    for (const message of [first, later]) {
      expect(Object.keys(message.headers)).toEqual(['content-type']);
      expect(message.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    }
    expect(later.key).toBe('k1');
    const parse = (body: Uint8Array) => JSON.parse(Buffer.from(body).toString('utf8')) as Record<string, unknown>;
    expect(Object.keys(parse(later.body))).toEqual(Object.keys(parse(first.body)));
    const decoded = decodeStructured(later.body, later.headers['content-type']);
    expect(decoded).toMatchObject({ specversion: '1.0', id: later.id, source: 'ticker', type: 'ticker.tick', data: { seq: 2 } });
    expect(decoded.datacontenttype).toBe('application/json');
    expect(decoded.extensions?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(Date.parse(decoded.time ?? '')).not.toBeNaN();
    // Binary-mode receivers' decoder reads it too: it detects the mode.
    expect(decodeCloudEvent(later.headers, later.body, cloudEventsBindings.nats)).toEqual(decoded);
  });

  it('builds payload-free events without data or datacontenttype, continuing the caller trace', async () => {
    const cfg = structured();
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    await buildOutgoing(cfg, address('ping'), ping, undefined);
    const later = await buildOutgoing(cfg, address('ping'), ping, undefined, { traceparent: parent });
    const decoded = decodeStructured(later.body, later.headers['content-type']);
    expect(decoded.data).toBeUndefined();
    expect(decoded.datacontenttype).toBeUndefined();
    expect(decoded).toMatchObject({ id: later.id, type: 'ticker.ping' });
    expect(decoded.extensions?.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
  });

  it('escapes what needs escaping on the full path (subject) and still validates every send', async () => {
    const cfg = structured();
    await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
    const custom = await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }, { subject: 'caf\u00e9 "7"', id: 'order-7' });
    const decoded = decodeStructured(custom.body, custom.headers['content-type']);
    expect(decoded).toMatchObject({ id: 'order-7', subject: 'caf\u00e9 "7"', data: { seq: 2 } });
    await expect(buildOutgoing(cfg, address('tick'), shape, { seq: 'x' })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
    await expect(buildOutgoing(cfg, address('ping'), ping, { seq: 1 })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
  });

  it('tells the send channel the type, source, kind and trace of the messages it builds while observed', async () => {
    const cfg = structured();
    const listener = { start: () => {} };
    const unsubscribe = subscribeTracing(tracing.send, listener);
    try {
      const built = [
        await buildOutgoing(cfg, address('tick'), shape, { seq: 1 }),
        await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }),
        await buildOutgoing(cfg, address('tick'), shape, { seq: 3 }, { subject: 's' }),
      ];
      for (const message of built) {
        const decoded = decodeStructured(message.body, message.headers['content-type']);
        expect(describeOutgoing(message)).toEqual({
          type: 'ticker.tick',
          traceparent: decoded.extensions?.traceparent,
          source: decoded.source,
          kind: 'event',
        });
      }
    } finally {
      unsubscribe();
    }
  });
});

describe('the template fast path is the codec, byte for byte', () => {
  const allBindings: CloudEventsBinding[] = Object.values(cloudEventsBindings).flatMap((binding) => [
    withMode(binding, 'binary'),
    withMode(binding, 'structured'),
  ]);
  const hex = (length: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${length}}$`));
  const values = fc.record({
    id: fc.uuid(),
    time: fc
      .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
      .map((d) => d.toISOString()),
    traceparent: fc.tuple(hex(32), hex(16), fc.constantFrom('00', '01')).map(([t, s, f]) => `00-${t}-${s}-${f}`),
  });
  // Sources with what a binding must escape or keep: percent-encodings (NATS and HTTP encode the "%"), sub-delims, a scheme.
  const token = fc.constantFrom(
    'a',
    'Z',
    '0',
    '-',
    '.',
    '/',
    '%20',
    '%C3%A9',
    '%F0%9F%98%80',
    '~',
    '_',
    '!',
    '$',
    '&',
    "'",
    '(',
    ')',
    '*',
    '+',
    ',',
    ';',
    '=',
    '@',
    '?',
  );
  const text = fc
    .tuple(fc.constantFrom('', 'urn:x/', 'https://h.example/', '/'), fc.array(token, { minLength: 1, maxLength: 10 }))
    .map(([head, tokens]) => `${head}s${tokens.join('')}`);
  const contractName = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z0-9][a-z0-9-]{0,5})?$/);

  it('for every binding and content mode, every source and type, with and without JSON data', () => {
    let compared = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...allBindings),
        text,
        contractName,
        fc.option(fc.jsonValue(), { nil: undefined }),
        values,
        fc.boolean(),
        (binding, source, name, data, v, signed) => {
          const c = defineContract({ name, events: { e: event({ data: z.unknown() }) } });
          const a: Address = { kind: 'event', contract: c, name: 'e', type: eventType(c, 'e'), topic: eventsTopic(c) };
          const cfg = config(binding, signed);
          let both: ReturnType<typeof encodePlainBothWays>;
          try {
            both = encodePlainBothWays({ ...cfg, service: source }, a, data, v);
          } catch (error) {
            // A source the envelope refuses (not a URI-reference) is refused by the full path: no template either.
            expect((error as { code?: string }).code).toBe('SB_NOT_CLOUDEVENT');
            return;
          }
          if (both.template === undefined) return;
          compared += 1;
          expect(Object.entries(both.template.headers)).toEqual(Object.entries(both.full.headers));
          expect(Buffer.from(both.template.body).equals(Buffer.from(both.full.body))).toBe(true);
        },
      ),
      { numRuns: 400, seed: 20261201 },
    );
    // Most generated sources are valid URI-references: the comparison really ran, not only the early returns.
    expect(compared).toBeGreaterThan(200);
  });

  it('also with a caller-chosen id and subject: checked as the envelope checks them, encoded as the binding encodes them', () => {
    let compared = 0;
    // Mostly Strings the envelope takes (quotes, percent, backslash, non-ASCII, astral), some it refuses (controls, lone surrogates, empty).
    const taken = fc.string({
      unit: fc.constantFrom('a', 'Z', '0', ' ', '"', '%', '\\', 'é', '€', '😀', ':', '/'),
      minLength: 1,
      maxLength: 16,
    });
    const refused = fc.string({ unit: fc.constantFrom('a', '\u0001', '\u0085', '\ud800'), maxLength: 6 });
    const anyText = fc.oneof({ weight: 5, arbitrary: taken }, { weight: 1, arbitrary: refused });
    fc.assert(
      fc.property(
        fc.constantFrom(...allBindings),
        fc.option(fc.jsonValue(), { nil: undefined }),
        values,
        anyText,
        anyText,
        fc.boolean(),
        (binding, data, v, id, subject, signed) => {
          const cfg = config(binding, signed);
          let both: ReturnType<typeof encodePlainBothWays>;
          try {
            both = encodePlainBothWays(cfg, address('tick'), data, { ...v, id, subject });
          } catch (error) {
            // What the envelope refuses never takes the template: the full path refuses it.
            expect((error as { code?: string }).code).toBe('SB_NOT_CLOUDEVENT');
            return;
          }
          expect(both.plain).toBe(true);
          compared += 1;
          expect(both.template).toBeDefined();
          expect(Object.entries(both.template!.headers)).toEqual(Object.entries(both.full.headers));
          expect(Buffer.from(both.template!.body).equals(Buffer.from(both.full.body))).toBe(true);
        },
      ),
      { numRuns: 400, seed: 20261202 },
    );
    expect(compared).toBeGreaterThan(150);
  });

  it('has a template for ordinary addresses in every binding (the fast path is taken), signed or not', () => {
    for (const [binding, signed] of allBindings.flatMap((b) => [[b, false] as const, [b, true] as const])) {
      const both = encodePlainBothWays(
        config(binding, signed),
        address('tick'),
        { seq: 1 },
        {
          id: '0190a8e2-6c1f-7000-8000-000000000001',
          time: '2026-12-01T10:00:00.123Z',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        },
      );
      expect(both.template).toBeDefined();
    }
  });
});
