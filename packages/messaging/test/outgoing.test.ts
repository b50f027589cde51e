import type { CloudEventsBinding } from '@switchboard/core';
import { cloudEventsBindings, decodeBinary, decodeCloudEvent, decodeStructured, defineContract, event } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Address } from '../src/addressing.js';
import { eventsTopic, eventType } from '../src/addressing.js';
import { buildOutgoing, describeOutgoing, type OutgoingConfig } from '../src/outgoing.js';

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

function config(binding: CloudEventsBinding): OutgoingConfig {
  return { service: 'ticker', binding, blobs: undefined, thresholdBytes: 1024, expiresInMs: undefined };
}

const shape = { schema: contract.events.tick.data, attachments: false };

describe('buildOutgoing one-pass build', () => {
  for (const binding of [cloudEventsBindings.nats, cloudEventsBindings.amqp, cloudEventsBindings.kafka]) {
    it(`gives later plain messages the headers of the first, full build (${binding.name} binding)`, async () => {
      const cfg = config(binding);
      const first = await buildOutgoing(cfg, address('tick'), shape, { seq: 1 });
      const later = await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }, { key: 'k1' });
      expect(Object.keys(later.headers)).toEqual(Object.keys(first.headers));
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
  const structured = (): OutgoingConfig => ({ ...config(cloudEventsBindings.nats), mode: 'structured' });
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

  it('tells the publish channel the type and trace of structured messages', async () => {
    const cfg = structured();
    const built = [
      await buildOutgoing(cfg, address('tick'), shape, { seq: 1 }),
      await buildOutgoing(cfg, address('tick'), shape, { seq: 2 }),
    ];
    for (const message of built) {
      const decoded = decodeStructured(message.body, message.headers['content-type']);
      expect(describeOutgoing(message, cfg.binding)).toEqual({ type: 'ticker.tick', traceparent: decoded.extensions?.traceparent });
    }
  });
});
