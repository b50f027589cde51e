import { randomBytes } from 'node:crypto';
import {
  type CloudEvent,
  createCloudEvent,
  type Delivery,
  decodeCloudEvent,
  encodeCloudEvent,
  isSwitchboardError,
  type OutgoingMessage,
} from '@switchboard/core';
import { DeliveryRecorder, randomName } from '@switchboard/testkit';
import type { Channel, ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import { connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRabbitMqBroker, type RabbitMqBroker } from '../src/index.js';
import { TopologyTracker } from './topology.js';

/**
 * The CloudEvents AMQP binding as RabbitMQ carries it, in both directions, against software others
 * wrote: messages built with raw amqplib from the binding's own examples (AMQP binding §3.1.4,
 * §3.2.4; the RabbitMQ working draft's examples) are received through `subscribe` and the core
 * codec; what the adapter publishes is read with raw amqplib and checked by a strict reader
 * written from the spec text below (the `cloudevents` npm SDK has no AMQP binding).
 */

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `sbb-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, prefix);

let broker: RabbitMqBroker;
let model: ChannelModel;
let raw: ConfirmChannel;
let rawAdmin: Channel;
const rawQueues: string[] = [];

/** Assertions made per direction, reported at the end (a "check" is one `expect`). */
const checks = { receive: { cases: 0, assertions: 0 }, publish: { cases: 0, assertions: 0 } };
let direction: keyof typeof checks | undefined;

beforeAll(async () => {
  broker = tracker.track(await createRabbitMqBroker({ url, prefix, drainTimeoutMs: 500 }));
  model = await connect(url);
  raw = await model.createConfirmChannel();
  rawAdmin = await model.createChannel();
});

afterEach(() => {
  if (direction === undefined) return;
  checks[direction].cases += 1;
  checks[direction].assertions += expect.getState().assertionCalls;
});

afterAll(async () => {
  console.info(
    `[rabbitmq binding] receive: ${checks.receive.cases} cases, ${checks.receive.assertions} checks; publish: ${checks.publish.cases} cases, ${checks.publish.assertions} checks`,
  );
  for (const queue of rawQueues) await rawAdmin.deleteQueue(queue).catch(() => {});
  await model.close();
  await broker.close();
  await tracker.cleanup();
});

/** Subscribes a new group to a new topic, publishes `messages` with raw amqplib to the topic's exchange, returns the deliveries. */
async function receive(messages: readonly { body: string | Buffer; properties: Options.Publish }[]): Promise<Delivery[]> {
  const topic = randomName('bind');
  const recorder = new DeliveryRecorder();
  await broker.subscribe({ topic, group: randomName('g') }, recorder.handler);
  for (const message of messages) {
    const content = typeof message.body === 'string' ? Buffer.from(message.body) : message.body;
    await new Promise<void>((resolve, reject) =>
      raw.publish(`${prefix}${topic}`, topic, content, message.properties, (error) => (error ? reject(error) : resolve())),
    );
  }
  await recorder.waitForCount(messages.length);
  return recorder.received.map((r) => r.delivery);
}

function decode(delivery: Delivery, extensionTypes?: Parameters<typeof decodeCloudEvent>[3]): CloudEvent {
  return decodeCloudEvent(delivery.headers, delivery.body, broker.binding, extensionTypes);
}

const APPLICATION_DATA = '{"greeting":"hello from a foreign producer"}';

describe('receive: what other producers send, read through subscribe and the core codec', () => {
  beforeAll(() => {
    direction = 'receive';
  });

  it('AMQP binding §3.1.4 binary example (cloudEvents: prefix, content-type property, no message-id)', async () => {
    const [delivery] = await receive([
      {
        body: APPLICATION_DATA,
        properties: {
          contentType: 'application/json; charset=utf-8',
          headers: {
            'cloudEvents:specversion': '1.0',
            'cloudEvents:type': 'com.example.someevent',
            'cloudEvents:time': '2018-04-05T03:56:24Z',
            'cloudEvents:id': '1234-1234-1234',
            'cloudEvents:source': '/mycontext/subcontext',
          },
        },
      },
    ]);
    expect(delivery!.id).toBe('');
    expect(decode(delivery!)).toEqual({
      specversion: '1.0',
      type: 'com.example.someevent',
      time: '2018-04-05T03:56:24Z',
      id: '1234-1234-1234',
      source: '/mycontext/subcontext',
      datacontenttype: 'application/json; charset=utf-8',
      data: { greeting: 'hello from a foreign producer' },
    });
  });

  it('the same example with the cloudEvents_ separator the binding prefers (JMS)', async () => {
    const [delivery] = await receive([
      {
        body: APPLICATION_DATA,
        properties: {
          contentType: 'application/json; charset=utf-8',
          messageId: 'transport-1',
          headers: {
            cloudEvents_specversion: '1.0',
            cloudEvents_type: 'com.example.someevent',
            cloudEvents_time: '2018-04-05T03:56:24Z',
            cloudEvents_id: '1234-1234-1234',
            cloudEvents_source: '/mycontext/subcontext',
            cloudEvents_subject: 'Euro € 😀 "x" 100%',
          },
        },
      },
    ]);
    expect(delivery!.id).toBe('transport-1');
    const event = decode(delivery!);
    expect(event.id).toBe('1234-1234-1234');
    expect(event.subject).toBe('Euro € 😀 "x" 100%');
    expect(event.datacontenttype).toBe('application/json; charset=utf-8');
  });

  it('AMQP binding §3.2.4 structured example (content-type property application/cloudevents+json)', async () => {
    const [delivery] = await receive([
      {
        body: JSON.stringify({
          specversion: '1.0',
          type: 'com.example.someevent',
          id: 'structured-1',
          source: '/mycontext/subcontext',
          data: { greeting: 'hi' },
        }),
        properties: { contentType: 'application/cloudevents+json; charset=utf-8' },
      },
    ]);
    expect(decode(delivery!)).toEqual({
      specversion: '1.0',
      type: 'com.example.someevent',
      id: 'structured-1',
      source: '/mycontext/subcontext',
      data: { greeting: 'hi' },
    });
  });

  it('RabbitMQ draft binary example (ce- prefix, content-type in the headers table)', async () => {
    // The draft's example shows `content-type: application/cloudevents+json` next to the ce-
    // headers, which its own §3 reads as structured mode; its §3.1.1 says the content type is the
    // data's media type in binary mode, which is what this message carries.
    const [delivery] = await receive([
      {
        body: APPLICATION_DATA,
        properties: {
          headers: {
            'ce-specversion': '1.0',
            'ce-id': '12341234',
            'ce-type': 'com.example.someevent',
            'ce-source': '/mycontext',
            'content-type': 'application/json; charset=UTF-8',
          },
        },
      },
    ]);
    expect(delivery!.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(decode(delivery!)).toEqual({
      specversion: '1.0',
      id: '12341234',
      type: 'com.example.someevent',
      source: '/mycontext',
      datacontenttype: 'application/json; charset=UTF-8',
      data: { greeting: 'hello from a foreign producer' },
    });
  });

  it('RabbitMQ draft structured example: refused for its member "data-field-1" (not a valid attribute name), read once it is one', async () => {
    const asWritten = {
      specversion: '1.0',
      id: '12341234',
      type: 'com.example.someevent',
      source: '/mycontext',
      'data-field-1': 'test',
      data: { greeting: 'hi' },
    };
    const { 'data-field-1': _invalid, ...valid } = { ...asWritten, datafield1: 'test' };
    const [first, second] = await receive([
      { body: JSON.stringify(asWritten), properties: { headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' } } },
      { body: JSON.stringify(valid), properties: { headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' } } },
    ]);
    let error: unknown;
    try {
      decode(first!);
    } catch (caught) {
      error = caught;
    }
    expect(isSwitchboardError(error, 'SB_NOT_CLOUDEVENT')).toBe(true);
    expect(JSON.stringify((error as { errors?: unknown }).errors)).toContain('/data-field-1');
    expect(decode(second!)).toMatchObject({ id: '12341234', extensions: { datafield1: 'test' }, data: { greeting: 'hi' } });
  });

  it('natively typed header values arrive as canonical strings and restore to their attribute types', async () => {
    const [delivery] = await receive([
      {
        body: Buffer.from([0, 1, 2, 255]),
        properties: {
          contentType: 'application/octet-stream',
          headers: {
            cloudEvents_specversion: '1.0',
            cloudEvents_id: 'typed-1',
            cloudEvents_source: '/typed',
            cloudEvents_type: 'com.example.typed',
            cloudEvents_time: { '!': 'timestamp', value: 1522900584 },
            cloudEvents_datasize: { '!': 'long', value: 2_147_483_647 },
            cloudEvents_small: { '!': 'byte', value: -7 },
            cloudEvents_short: { '!': 'short', value: 1234 },
            cloudEvents_int: { '!': 'int', value: -123_456 },
            cloudEvents_unsigned: { '!': 'unsignedint', value: 4_000_000 },
            cloudEvents_flag: true,
            cloudEvents_off: false,
            cloudEvents_bytes: Buffer.from('hello'),
            cloudEvents_ratio: { '!': 'decimal', value: { places: 2, digits: 12345 } },
            cloudEvents_tiny: { '!': 'decimal', value: { places: 3, digits: 5 } },
            cloudEvents_half: { '!': 'float', value: 1.5 },
            cloudEvents_quarter: { '!': 'double', value: 2.25 },
          },
        },
      },
    ]);
    expect(delivery!.headers).toMatchObject({
      cloudEvents_time: '2018-04-05T03:56:24Z',
      cloudEvents_datasize: '2147483647',
      cloudEvents_small: '-7',
      cloudEvents_short: '1234',
      cloudEvents_int: '-123456',
      cloudEvents_unsigned: '4000000',
      cloudEvents_flag: 'true',
      cloudEvents_off: 'false',
      cloudEvents_bytes: 'aGVsbG8=',
      cloudEvents_ratio: '123.45',
      cloudEvents_tiny: '0.005',
      cloudEvents_half: '1.5',
      cloudEvents_quarter: '2.25',
    });
    const event = decode(delivery!, { extensionTypes: { flag: 'Boolean', off: 'Boolean', bytes: 'Binary', small: 'Integer' } });
    expect(event.time).toBe('2018-04-05T03:56:24Z');
    expect(event.extensions).toMatchObject({ datasize: 2_147_483_647, small: -7, flag: true, off: false, ratio: '123.45' });
    expect(Buffer.from(event.extensions!.bytes as Uint8Array).toString()).toBe('hello');
    expect(Buffer.from(event.data as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('messages without a message-id are all handled, each with transport id "" (twice, then one with an id)', async () => {
    const binary = (id: string, messageId?: string) => ({
      body: APPLICATION_DATA,
      properties: {
        contentType: 'application/json',
        ...(messageId === undefined ? {} : { messageId }),
        headers: { cloudEvents_specversion: '1.0', cloudEvents_id: id, cloudEvents_source: '/foreign', cloudEvents_type: 'com.example.x' },
      },
    });
    const deliveries = await receive([binary('no-id-1'), binary('no-id-2'), binary('with-id', 'transport-3')]);
    expect(deliveries.map((d) => d.id)).toEqual(['', '', 'transport-3']);
    expect(deliveries.map((d) => decode(d).id)).toEqual(['no-id-1', 'no-id-2', 'with-id']);
  });

  it("hands up neither the adapter's own x-sb-* headers nor the server's (x-death, ...)", async () => {
    const [delivery] = await receive([
      {
        body: APPLICATION_DATA,
        properties: {
          contentType: 'application/json',
          headers: {
            cloudEvents_specversion: '1.0',
            cloudEvents_id: 'stripped-1',
            cloudEvents_source: '/foreign',
            cloudEvents_type: 'com.example.x',
            'x-sb-key': 'order-7',
            'x-sb-future': 'something later versions add',
            'x-death': [{ count: 1, reason: 'rejected', queue: 'q', exchange: '' }],
            'x-first-death-reason': 'rejected',
            'x-last-death-queue': 'q',
            'x-received-from': [{ uri: 'amqp://elsewhere' }],
            'x-custom': 'kept',
          },
        },
      },
    ]);
    expect(delivery!.key).toBe('order-7');
    expect(Object.keys(delivery!.headers).sort()).toEqual(
      ['cloudEvents_id', 'cloudEvents_source', 'cloudEvents_specversion', 'cloudEvents_type', 'content-type', 'x-custom'].sort(),
    );
    expect(decode(delivery!).id).toBe('stripped-1');
  });
});

/**
 * A strict reader of the CloudEvents AMQP binding (cloudevents/spec `bindings/amqp-protocol-binding.md`),
 * as RabbitMQ maps AMQP 1.0 to 0-9-1 (application-properties → headers table, the `content-type`
 * property → the `content-type` property). Written from the text, not from Switchboard's codec:
 * - §3: `content-type` prefixed `application/cloudevents` (case-insensitively) → structured mode,
 *   the body is a JSON event format document; otherwise binary mode.
 * - §3.1.1: in binary mode the `content-type` property is `datacontenttype`.
 * - §3.1.3: every other attribute is an application property (here: a header).
 * - §3.1.3.1: named `cloudEvents_<name>` or `cloudEvents:<name>`, one separator per message.
 * - §3.1.3.2: values in the canonical string form (or the native AMQP type) — what we send must be
 *   strings here, since the adapter writes canonical strings.
 */
function strictRead(message: Message): { mode: 'binary' | 'structured'; attributes: Record<string, unknown>; data: Buffer } {
  const contentType: unknown = message.properties.contentType;
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  if (typeof contentType === 'string' && contentType.toLowerCase().startsWith('application/cloudevents')) {
    expect(contentType.toLowerCase().startsWith('application/cloudevents+json')).toBe(true);
    const document = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
    const { data, data_base64: base64, ...attributes } = document;
    const bytes = base64 !== undefined ? Buffer.from(base64 as string, 'base64') : Buffer.from(JSON.stringify(data));
    return { mode: 'structured', attributes, data: bytes };
  }
  const attributes: Record<string, unknown> = {};
  const separators = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    const match = /^cloudEvents([_:])(.+)$/.exec(name);
    if (match === null) continue;
    separators.add(match[1]!);
    const attribute = match[2]!;
    expect(attribute, `attribute name ${attribute}`).toMatch(/^[a-z0-9]+$/);
    expect(attribute, 'datacontenttype is the content-type property, not a header').not.toBe('datacontenttype');
    expect(typeof value, `${name} is a canonical string`).toBe('string');
    attributes[attribute] = value;
  }
  expect(separators.size, 'one separator for all attributes').toBe(1);
  if (typeof contentType === 'string') attributes.datacontenttype = contentType;
  return { mode: 'binary', attributes, data: message.content };
}

/** Publishes `event` through the adapter (encoded by the codec for its binding) and reads it back with raw amqplib. */
async function publishAndRead(event: CloudEvent, options: { mode?: 'binary' | 'structured'; key?: string } = {}): Promise<Message> {
  const topic = randomName('bind');
  const queue = `${prefix}raw-${randomName('q')}`;
  rawQueues.push(queue);
  await rawAdmin.assertExchange(`${prefix}${topic}`, 'topic', { durable: true });
  await rawAdmin.assertQueue(queue, { durable: false, exclusive: true });
  await rawAdmin.bindQueue(queue, `${prefix}${topic}`, topic);
  const encoded = encodeCloudEvent(event, broker.binding, options.mode);
  const message: OutgoingMessage = {
    id: event.id,
    topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  await broker.publish(message);
  for (let tries = 0; tries < 200; tries++) {
    const got = await rawAdmin.get(queue, { noAck: true });
    if (got !== false) return got;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the published message did not arrive in the raw queue');
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
    extensions: {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      datasize: 2048,
      urgent: true,
      signature: new Uint8Array([1, 2, 3, 250]),
    },
  });
}

describe('publish: what the adapter sends, read with raw amqplib and a strict reader of the binding', () => {
  beforeAll(() => {
    direction = 'publish';
  });

  it('binary mode (the default): cloudEvents_ headers with canonical strings, datacontenttype in the content-type property', async () => {
    expect(broker.binding.mode).toBe('binary');
    const event = fullEvent();
    const message = await publishAndRead(event);
    expect(message.properties.contentType).toBe('application/json');
    expect(message.properties.messageId).toBe(event.id);
    const headers = message.properties.headers as Record<string, unknown>;
    expect(Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')).toBe(false);
    expect(headers).toEqual({
      cloudEvents_specversion: '1.0',
      cloudEvents_id: event.id,
      cloudEvents_source: '/services/orders',
      cloudEvents_type: 'com.example.order.placed',
      cloudEvents_subject: 'order-42',
      cloudEvents_time: '2026-12-01T10:00:00.123Z',
      cloudEvents_dataschema: 'https://example.com/schemas/order.json',
      cloudEvents_traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      cloudEvents_datasize: '2048',
      cloudEvents_urgent: 'true',
      cloudEvents_signature: 'AQID+g==',
    });
    const read = strictRead(message);
    expect(read.mode).toBe('binary');
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
      signature: 'AQID+g==',
    });
    expect(JSON.parse(read.data.toString('utf8'))).toEqual({ order: 42, total: 9.5 });
  });

  it('binary mode: string values travel as they are (AMQP strings are UTF-8: no percent-encoding)', async () => {
    const event = createCloudEvent({
      source: '/s',
      type: 't.x',
      subject: 'Euro € 😀 "x" 100%',
      data: 'plain text',
      datacontenttype: 'text/plain',
    });
    const message = await publishAndRead(event);
    const read = strictRead(message);
    expect(read.attributes.subject).toBe('Euro € 😀 "x" 100%');
    expect(read.attributes.datacontenttype).toBe('text/plain');
    expect(read.data.toString('utf8')).toBe('plain text');
  });

  it('binary mode: binary data travels as the body untouched, its media type in the content-type property', async () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const event = createCloudEvent({ source: '/s', type: 't.bin', data: bytes });
    const message = await publishAndRead(event);
    expect(message.properties.contentType).toBe('application/octet-stream');
    expect(Buffer.compare(message.content, Buffer.from(bytes))).toBe(0);
    expect(strictRead(message).attributes.datacontenttype).toBe('application/octet-stream');
  });

  it('binary mode without data: no content-type property at all', async () => {
    const event = createCloudEvent({ source: '/s', type: 't.empty' });
    const message = await publishAndRead(event);
    expect(message.properties.contentType).toBeUndefined();
    expect(message.content.byteLength).toBe(0);
    expect(strictRead(message).attributes).toMatchObject({ id: event.id, type: 't.empty' });
  });

  it('structured mode: the content-type property is application/cloudevents+json, the body the JSON event format', async () => {
    const event = fullEvent();
    const message = await publishAndRead(event, { mode: 'structured' });
    expect(message.properties.contentType).toBe('application/cloudevents+json; charset=utf-8');
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    expect(Object.keys(headers).filter((name) => name.toLowerCase() === 'content-type' || name.startsWith('cloudEvents'))).toEqual([]);
    const read = strictRead(message);
    expect(read.mode).toBe('structured');
    expect(read.attributes).toMatchObject({
      specversion: '1.0',
      id: event.id,
      source: '/services/orders',
      type: 'com.example.order.placed',
      datacontenttype: 'application/json',
      datasize: 2048,
      urgent: true,
      signature: 'AQID+g==',
    });
    expect(JSON.parse(read.data.toString('utf8'))).toEqual({ order: 42, total: 9.5 });
  });

  it('the ordering key travels as x-sb-key, the only header besides the attributes', async () => {
    const event = createCloudEvent({ source: '/s', type: 't.key', data: { a: 1 } });
    const message = await publishAndRead(event, { key: 'customer-42' });
    const headers = message.properties.headers as Record<string, unknown>;
    expect(headers['x-sb-key']).toBe('customer-42');
    expect(Object.keys(headers).filter((name) => !name.startsWith('cloudEvents_'))).toEqual(['x-sb-key']);
  });
});
