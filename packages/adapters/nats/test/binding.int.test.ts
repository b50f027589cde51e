import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { type Msg, type NatsConnection, headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  type Broker,
  type CloudEvent,
  createCloudEvent,
  type Delivery,
  decodeCloudEvent,
  encodeCloudEvent,
  isSwitchboardError,
  type OutgoingMessage,
} from '@switchboard/core';
import { DeliveryRecorder, randomName } from '@switchboard/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNatsBroker, createNatsCoreBroker, type NatsBroker, type NatsCoreBroker } from '../src/index.js';

/**
 * The CloudEvents NATS binding in both directions, on JetStream and on core NATS, against
 * software others wrote: messages built with the raw `@nats-io/transport-node` client from the
 * binding's own examples (§3.1.4 binary, §3.2.1 structured) and the forms it allows (quoted
 * strings, `Ce-` casing, lower-case hex, no headers at all before NATS 2.2, no `Nats-Msg-Id`) are
 * received through `subscribe` and the core codec; what the adapters publish is read with the raw
 * client and checked by a strict reader written from the spec text below (the `cloudevents` npm
 * SDK has no NATS binding).
 */

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbb${randomBytes(4).toString('hex')}`;
const corePrefix = `sbb-core-${randomBytes(4).toString('hex')}`;

let js: NatsBroker;
let core: NatsCoreBroker;
let nc: NatsConnection;

const checks = { receive: { cases: 0, assertions: 0 }, publish: { cases: 0, assertions: 0 } };
let direction: keyof typeof checks | undefined;

beforeAll(async () => {
  js = await createNatsBroker({ url, prefix, drainTimeoutMs: 500 });
  core = await createNatsCoreBroker({ url, prefix: corePrefix, drainTimeoutMs: 500 });
  nc = await connect({ servers: url });
});

afterEach(() => {
  if (direction === undefined) return;
  checks[direction].cases += 1;
  checks[direction].assertions += expect.getState().assertionCalls;
});

afterAll(async () => {
  console.info(
    `[nats binding] receive: ${checks.receive.cases} cases, ${checks.receive.assertions} checks; publish: ${checks.publish.cases} cases, ${checks.publish.assertions} checks`,
  );
  await js.close();
  await core.close();
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  await nc.close();
});

interface RawMessage {
  readonly headers?: Record<string, string>;
  readonly body: string;
  /** Sent as the `Nats-Msg-Id` header. */
  readonly msgID?: string;
}

type Engine = { readonly name: string; broker: () => Broker; subject: (topic: string) => string };
const engines: Engine[] = [
  { name: 'JetStream', broker: () => js, subject: (topic) => `${prefix}.${topic}` },
  { name: 'core NATS', broker: () => core, subject: (topic) => `${corePrefix}.${topic}` },
];

/** Subscribes a new group to a new topic, publishes `messages` with the raw client to its subject, returns the deliveries in order. */
async function receive(engine: Engine, messages: readonly RawMessage[]): Promise<Delivery[]> {
  const topic = randomName('bind');
  const recorder = new DeliveryRecorder();
  await engine.broker().subscribe({ topic, group: randomName('g'), maxInFlight: 1 }, recorder.handler);
  for (const message of messages) {
    let h: ReturnType<typeof natsHeaders> | undefined;
    if (message.headers !== undefined || message.msgID !== undefined) {
      h = natsHeaders();
      for (const [name, value] of Object.entries(message.headers ?? {})) h.append(name, value);
      // JetStream reads Nats-Msg-Id from any publish to a stream's subject; core NATS carries it as a header.
      if (message.msgID !== undefined) h.set('Nats-Msg-Id', message.msgID);
    }
    nc.publish(engine.subject(topic), message.body, h === undefined ? {} : { headers: h });
  }
  await nc.flush();
  await recorder.waitForCount(messages.length);
  return recorder.received.map((r) => r.delivery);
}

function decode(engine: Engine, delivery: Delivery): CloudEvent {
  return decodeCloudEvent(delivery.headers, delivery.body, engine.broker().binding);
}

const APPLICATION_DATA = '{"greeting":"hello from a foreign producer"}';

describe.each(engines)('receive ($name): what other producers send, read through subscribe and the core codec', (engine) => {
  beforeAll(() => {
    direction = 'receive';
  });

  it('NATS binding §3.1.4 binary example (ce- headers, ce-datacontenttype)', async () => {
    const [delivery] = await receive(engine, [
      {
        headers: {
          'ce-specversion': '1.0',
          'ce-type': 'com.example.someevent',
          'ce-time': '2018-04-05T03:56:24Z',
          'ce-id': '1234-1234-1234',
          'ce-source': '/mycontext/subcontext',
          'ce-datacontenttype': 'application/json',
        },
        body: APPLICATION_DATA,
      },
    ]);
    expect(decode(engine, delivery!)).toEqual({
      specversion: '1.0',
      type: 'com.example.someevent',
      time: '2018-04-05T03:56:24Z',
      id: '1234-1234-1234',
      source: '/mycontext/subcontext',
      datacontenttype: 'application/json',
      data: { greeting: 'hello from a foreign producer' },
    });
  });

  it('NATS binding §3.2.1 structured example (Content-Type: application/cloudevents+json)', async () => {
    const [delivery] = await receive(engine, [
      {
        headers: { 'Content-Type': 'application/cloudevents+json' },
        body: JSON.stringify({ specversion: '1.0', type: 'com.example.someevent', id: 's-1', source: '/mycontext', data: { a: 1 } }),
      },
    ]);
    expect(decode(engine, delivery!)).toEqual({
      specversion: '1.0',
      type: 'com.example.someevent',
      id: 's-1',
      source: '/mycontext',
      data: { a: 1 },
    });
  });

  it('a message without any headers (servers before NATS 2.2) is a structured event', async () => {
    const [delivery] = await receive(engine, [
      { body: JSON.stringify({ specversion: '1.0', type: 'com.example.old', id: 'old-1', source: '/old', data: 'x' }) },
    ]);
    expect(delivery!.headers).toEqual({});
    expect(decode(engine, delivery!)).toEqual({ specversion: '1.0', type: 'com.example.old', id: 'old-1', source: '/old', data: 'x' });
  });

  it('percent-encoded values (§3.1.3.2 example), quoted strings, lower-case hex and Ce-/CE- casing', async () => {
    const [delivery] = await receive(engine, [
      {
        headers: {
          'CE-SPECVERSION': '1.0',
          'Ce-Id': '"quoted \\"id\\" with spaces"',
          'Ce-Source': '/foreign',
          'Ce-Type': 'com.example.someevent',
          'Ce-Subject': 'Euro%20%E2%82%AC%20%F0%9F%98%80',
          'ce-note': '%e2%82%ac%20lower%20hex',
          'Ce-Datacontenttype': 'text/plain;%20charset=utf-8',
        },
        body: 'plain',
      },
    ]);
    const event = decode(engine, delivery!);
    expect(event.id).toBe('quoted "id" with spaces');
    expect(event.subject).toBe('Euro € 😀');
    expect(event.extensions?.note).toBe('€ lower hex');
    expect(event.datacontenttype).toBe('text/plain; charset=utf-8');
    expect(event.data).toBe('plain');
  });

  it('an overlong UTF-8 percent-encoding (%C0%A0) is refused, as §3.1.3.2 requires', async () => {
    const [delivery] = await receive(engine, [
      {
        headers: { 'ce-specversion': '1.0', 'ce-id': 'bad-1', 'ce-source': '/s', 'ce-type': 't', 'ce-subject': 'a%C0%A0b' },
        body: '',
      },
    ]);
    let error: unknown;
    try {
      decode(engine, delivery!);
    } catch (caught) {
      error = caught;
    }
    expect(isSwitchboardError(error, 'SB_NOT_CLOUDEVENT')).toBe(true);
    expect(JSON.stringify((error as { errors?: unknown }).errors)).toContain('/subject');
  });

  it('messages without Nats-Msg-Id are all handled (twice), the MessageId is the CloudEvent id', async () => {
    const binary = (id: string, msgID?: string): RawMessage => ({
      headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/foreign', 'ce-type': 'com.example.x' },
      body: '',
      ...(msgID === undefined ? {} : { msgID }),
    });
    const deliveries = await receive(engine, [binary('no-id-1'), binary('no-id-2'), binary('with-id', 'transport-3')]);
    expect(deliveries.map((d) => decode(engine, d).id)).toEqual(['no-id-1', 'no-id-2', 'with-id']);
    expect(deliveries[2]!.id).toBe('transport-3');
    if (engine.name === 'JetStream') {
      // Without Nats-Msg-Id the transport id is the stream position, a hint only.
      expect(deliveries[0]!.id).toMatch(/^SBB[0-9A-F]+_bind-[0-9a-f]+:\d+$/);
      expect(deliveries[1]!.id).not.toBe(deliveries[0]!.id);
    } else {
      expect(deliveries.slice(0, 2).map((d) => d.id)).toEqual(['', '']);
    }
  });

  it("hands up none of the adapter's own x-sb-* headers and no Nats-Msg-Id; the key comes from x-sb-key", async () => {
    const [delivery] = await receive(engine, [
      {
        headers: {
          'ce-specversion': '1.0',
          'ce-id': 'own-1',
          'ce-source': '/s',
          'ce-type': 't',
          'x-sb-key': 'order-7',
          'x-sb-future': 'later versions',
          'x-custom': 'kept',
        },
        body: '',
        msgID: 'transport-own',
      },
    ]);
    expect(delivery!.key).toBe('order-7');
    expect(Object.keys(delivery!.headers).sort()).toEqual(['ce-id', 'ce-source', 'ce-specversion', 'ce-type', 'x-custom']);
  });
});

/**
 * A strict reader of the CloudEvents NATS binding (cloudevents/spec `bindings/nats-protocol-binding.md`),
 * written from the text, not from Switchboard's codec:
 * - §3: a `Content-Type` header of `application/cloudevents` (case-insensitively) → structured
 *   mode, the payload the JSON event format; otherwise binary mode.
 * - §3.1.3.1: every attribute, `datacontenttype` included, is a header `ce-<name>` (header names
 *   are case-insensitive).
 * - §3.1.3.2: values printable US-ASCII only (U+0021–U+007E: space, `"` and `%` percent-encoded,
 *   upper-case hex), decoded by one round of percent-decoding that must yield valid UTF-8.
 */
function strictRead(msg: Msg): { mode: 'binary' | 'structured'; attributes: Record<string, unknown>; data: Uint8Array; names: string[] } {
  const entries: [string, string][] = [];
  for (const name of msg.headers?.keys() ?? []) for (const value of msg.headers!.values(name)) entries.push([name, value]);
  const names = entries.map(([name]) => name);
  const contentType = entries.find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  if (contentType?.toLowerCase().startsWith('application/cloudevents')) {
    expect(contentType.toLowerCase().startsWith('application/cloudevents+json')).toBe(true);
    const { data, data_base64: base64, ...attributes } = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
    const bytes = base64 !== undefined ? Buffer.from(base64 as string, 'base64') : Buffer.from(JSON.stringify(data));
    return { mode: 'structured', attributes, data: bytes, names };
  }
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of entries) {
    if (!name.toLowerCase().startsWith('ce-')) continue;
    const attribute = name.slice(3).toLowerCase();
    expect(attribute, `attribute name ${attribute}`).toMatch(/^[a-z0-9]+$/);
    expect(value, `${name} holds only printable ASCII without space, quote or a bare %`).toMatch(
      /^(?:[\x21\x23\x24\x26-\x7e]|%[0-9A-F]{2})*$/,
    );
    attributes[attribute] = percentDecode(value);
  }
  return { mode: 'binary', attributes, data: msg.data, names };
}

/** One round of percent-decoding into bytes, which must be valid UTF-8 (a `TextDecoder` with `fatal` throws otherwise). */
function percentDecode(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '%') {
      bytes.push(Number.parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(value.charCodeAt(i));
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
}

/** Publishes `event` through the adapter (encoded by the codec for its binding) and reads it with a raw subscription on the subject. */
async function publishAndRead(
  engine: Engine,
  event: CloudEvent,
  options: { mode?: 'binary' | 'structured'; key?: string } = {},
): Promise<Msg> {
  const topic = randomName('bind');
  const subscription = nc.subscribe(engine.subject(topic), { max: 1 });
  await nc.flush();
  const encoded = encodeCloudEvent(event, engine.broker().binding, options.mode);
  const message: OutgoingMessage = {
    id: event.id,
    topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  await engine.broker().publish(message);
  for await (const msg of subscription) return msg;
  throw new Error('the published message did not arrive');
}

function fullEvent(): CloudEvent {
  return createCloudEvent({
    id: `evt-${randomBytes(4).toString('hex')}`,
    source: '/services/orders',
    type: 'com.example.order.placed',
    subject: 'order-42',
    time: '2026-12-01T10:00:00.123Z',
    dataschema: 'https://example.com/schemas/order.json',
    data: { order: 42, total: 9.5 },
    extensions: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', datasize: 2048, urgent: true },
  });
}

describe('publish (JetStream): what the adapter sends, read with the raw client and a strict reader of the binding', () => {
  const engine = engines[0]!;
  beforeAll(() => {
    direction = 'publish';
  });

  it('binary mode (the default): ce- headers, ce-datacontenttype (no content-type header), Nats-Msg-Id the event id with a digest', async () => {
    expect(js.binding.mode).toBe('binary');
    const event = fullEvent();
    const msg = await publishAndRead(engine, event);
    // The event id, then a digest of its source and signature (JetStream deduplicates by it: see dedup.ts).
    expect(msg.headers?.get('Nats-Msg-Id')).toMatch(new RegExp(`^${event.id}~d[A-Za-z0-9_-]{22}$`));
    const read = strictRead(msg);
    expect(read.mode).toBe('binary');
    expect(read.names.some((name) => name.toLowerCase() === 'content-type')).toBe(false);
    expect(read.names.filter((name) => !name.startsWith('ce-'))).toEqual(['Nats-Msg-Id']);
    expect(read.attributes).toEqual({
      specversion: '1.0',
      id: event.id,
      source: '/services/orders',
      type: 'com.example.order.placed',
      subject: 'order-42',
      time: '2026-12-01T10:00:00.123Z',
      dataschema: 'https://example.com/schemas/order.json',
      datacontenttype: 'application/json',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      datasize: '2048',
      urgent: 'true',
    });
    expect(JSON.parse(new TextDecoder().decode(read.data))).toEqual({ order: 42, total: 9.5 });
  });

  it('binary mode: a subject like `Euro € 😀 "x" 100%` is percent-encoded exactly as §3.1.3.2 says', async () => {
    const event = createCloudEvent({
      source: '/s',
      type: 't.x',
      subject: 'Euro € 😀 "x" 100%',
      data: 'text',
      datacontenttype: 'text/plain; charset=utf-8',
    });
    const msg = await publishAndRead(engine, event);
    expect(msg.headers?.get('ce-subject')).toBe('Euro%20%E2%82%AC%20%F0%9F%98%80%20%22x%22%20100%25');
    expect(msg.headers?.get('ce-datacontenttype')).toBe('text/plain;%20charset=utf-8');
    const read = strictRead(msg);
    expect(read.attributes.subject).toBe('Euro € 😀 "x" 100%');
    expect(read.attributes.datacontenttype).toBe('text/plain; charset=utf-8');
  });

  it('binary mode: binary data is the payload untouched; no data means no ce-datacontenttype', async () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const withData = await publishAndRead(engine, createCloudEvent({ source: '/s', type: 't.bin', data: bytes }));
    expect(Buffer.compare(Buffer.from(withData.data), Buffer.from(bytes))).toBe(0);
    expect(strictRead(withData).attributes.datacontenttype).toBe('application/octet-stream');
    const empty = await publishAndRead(engine, createCloudEvent({ source: '/s', type: 't.empty' }));
    expect(empty.data.byteLength).toBe(0);
    expect(strictRead(empty).attributes).not.toHaveProperty('datacontenttype');
  });

  it('structured mode: Content-Type application/cloudevents+json and the JSON event format, no ce- headers', async () => {
    const event = fullEvent();
    const msg = await publishAndRead(engine, event, { mode: 'structured' });
    const read = strictRead(msg);
    expect(read.mode).toBe('structured');
    expect(read.names.filter((name) => name.toLowerCase().startsWith('ce-'))).toEqual([]);
    expect(read.attributes).toMatchObject({
      specversion: '1.0',
      id: event.id,
      type: 'com.example.order.placed',
      datasize: 2048,
      urgent: true,
    });
    expect(JSON.parse(new TextDecoder().decode(read.data))).toEqual({ order: 42, total: 9.5 });
  });

  it('the ordering key travels as x-sb-key, the only header besides the attributes and Nats-Msg-Id', async () => {
    const msg = await publishAndRead(engine, createCloudEvent({ source: '/s', type: 't.key', data: { a: 1 } }), { key: 'customer-42' });
    expect(msg.headers?.get('x-sb-key')).toBe('customer-42');
    expect(
      strictRead(msg)
        .names.filter((name) => !name.startsWith('ce-'))
        .sort(),
    ).toEqual(['Nats-Msg-Id', 'x-sb-key']);
  });
});

describe('publish (core NATS): what the adapter sends, read with the raw client and a strict reader of the binding', () => {
  const engine = engines[1]!;
  beforeAll(() => {
    direction = 'publish';
  });

  it('structured mode (core NATS default): Content-Type application/cloudevents+json, the JSON event format', async () => {
    expect(core.binding.mode).toBe('structured');
    const event = fullEvent();
    const msg = await publishAndRead(engine, event);
    const read = strictRead(msg);
    expect(read.mode).toBe('structured');
    expect(msg.headers?.get('content-type')).toBe('application/cloudevents+json; charset=utf-8');
    expect(read.attributes).toMatchObject({
      specversion: '1.0',
      id: event.id,
      source: '/services/orders',
      type: 'com.example.order.placed',
      subject: 'order-42',
      datacontenttype: 'application/json',
    });
    expect(JSON.parse(new TextDecoder().decode(read.data))).toEqual({ order: 42, total: 9.5 });
  });

  it('binary mode on core NATS: the same ce- mapping and percent-encoding as on JetStream', async () => {
    const event = createCloudEvent({ source: '/s', type: 't.x', subject: 'Euro € 😀 "x" 100%', data: { a: 1 } });
    const msg = await publishAndRead(engine, event, { mode: 'binary' });
    expect(msg.headers?.get('ce-subject')).toBe('Euro%20%E2%82%AC%20%F0%9F%98%80%20%22x%22%20100%25');
    const read = strictRead(msg);
    expect(read.mode).toBe('binary');
    expect(read.attributes).toMatchObject({ id: event.id, subject: 'Euro € 😀 "x" 100%', datacontenttype: 'application/json' });
    expect(read.names.some((name) => name.toLowerCase() === 'content-type')).toBe(false);
  });
});
