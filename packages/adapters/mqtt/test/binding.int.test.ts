import { randomBytes } from 'node:crypto';
import {
  type CloudEvent,
  createCloudEvent,
  type Delivery,
  decodeCloudEvent,
  encodeCloudEvent,
  type OutgoingMessage,
} from '@switchboard/core';
import { DeliveryRecorder, randomName } from '@switchboard/testkit';
import { MQTT, CloudEvent as SdkCloudEvent } from 'cloudevents';
import type { IClientPublishOptions, IPublishPacket, MqttClient } from 'mqtt';
import { connectAsync } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMqttBroker, type MqttBroker } from '../src/index.js';

/**
 * The CloudEvents MQTT binding in both directions, against software others wrote: messages built
 * with the raw `mqtt` client (MQTT 5 and 3.1.1) from the binding's own examples (§3.1.4 binary,
 * §3.2.4 structured for MQTT 5 and 3.1.1), and messages made by the official `cloudevents` SDK's
 * `MQTT.binary` / `MQTT.structured`, are received through `subscribe` and the core codec; what the
 * adapter publishes is read with the raw client and decoded by the SDK's `MQTT.isEvent` /
 * `MQTT.toEvent`, with the property placement checked against the spec text.
 */

const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const prefix = `sbb-mqtt-${randomBytes(4).toString('hex')}`;

let broker: MqttBroker;
let v5: MqttClient;
let v311: MqttClient;

const checks = { receive: { cases: 0, assertions: 0 }, publish: { cases: 0, assertions: 0 } };
let direction: keyof typeof checks | undefined;

beforeAll(async () => {
  broker = await createMqttBroker({ url, prefix, drainTimeoutMs: 500 });
  v5 = await connectAsync(url, { protocolVersion: 5, clean: true });
  v311 = await connectAsync(url, { protocolVersion: 4, clean: true });
});

afterEach(() => {
  if (direction === undefined) return;
  checks[direction].cases += 1;
  checks[direction].assertions += expect.getState().assertionCalls;
});

afterAll(async () => {
  console.info(
    `[mqtt binding] receive: ${checks.receive.cases} cases, ${checks.receive.assertions} checks; publish: ${checks.publish.cases} cases, ${checks.publish.assertions} checks`,
  );
  await broker.close();
  await v5.endAsync();
  await v311.endAsync();
});

interface RawPublish {
  readonly body: string | Buffer;
  readonly properties?: IClientPublishOptions['properties'];
  /** Sent by the MQTT 3.1.1 client (no properties at all). */
  readonly v311?: boolean;
}

/** Subscribes a new group to a new topic, publishes `messages` at QoS 1 with a raw client, returns the deliveries in order. */
async function receive(messages: readonly RawPublish[]): Promise<Delivery[]> {
  const topic = randomName('bind');
  const recorder = new DeliveryRecorder();
  await broker.subscribe({ topic, group: randomName('g'), maxInFlight: 1 }, recorder.handler);
  for (const message of messages) {
    const client = message.v311 === true ? v311 : v5;
    await client.publishAsync(`${prefix}/${topic}`, message.body, {
      qos: 1,
      ...(message.properties === undefined ? {} : { properties: message.properties }),
    });
  }
  await recorder.waitForCount(messages.length);
  return recorder.received.map((r) => r.delivery);
}

function decode(delivery: Delivery): CloudEvent {
  return decodeCloudEvent(delivery.headers, delivery.body, broker.binding);
}

const APPLICATION_DATA = '{"greeting":"hello from a foreign producer"}';

describe('receive: what other producers send, read through subscribe and the core codec', () => {
  beforeAll(() => {
    direction = 'receive';
  });

  it('MQTT binding §3.1.4 binary example (Content Type property, attributes as unprefixed user properties)', async () => {
    const [delivery] = await receive([
      {
        body: APPLICATION_DATA,
        properties: {
          contentType: 'application/json; charset=utf-8',
          userProperties: {
            specversion: '1.0',
            type: 'com.example.someevent',
            time: '2018-04-05T03:56:24Z',
            id: '1234-1234-1234',
            source: '/mycontext/subcontext',
            datacontenttype: 'application/json; charset=utf-8',
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

  it('MQTT binding §3.2.4 structured example for MQTT 5 (Content Type application/cloudevents+json)', async () => {
    // The example's payload has placeholders (`"time" : 2018-04-05T03:56;24Z`); this is it as valid JSON.
    const document = {
      specversion: '1.0',
      type: 'com.example.someevent',
      time: '2018-04-05T03:56:24Z',
      id: '1234-1234-1234',
      source: '/mycontext/subcontext',
      datacontenttype: 'application/json; charset=utf-8',
      data: { greeting: 'hi' },
    };
    const [delivery] = await receive([
      { body: JSON.stringify(document), properties: { contentType: 'application/cloudevents+json; charset=utf-8' } },
    ]);
    expect(decode(delivery!)).toEqual(document);
  });

  it('MQTT binding §3.2.4 structured example for MQTT 3.1.1 (no properties: the JSON format is implied)', async () => {
    const document = { specversion: '1.0', type: 'com.example.someevent', id: 'v311-1', source: '/mycontext/subcontext', data: { a: 1 } };
    const [delivery] = await receive([{ body: JSON.stringify(document), v311: true }]);
    expect(delivery!.headers).toEqual({});
    expect(decode(delivery!)).toEqual(document);
  });

  it('binary mode without data: no Content Type, the attributes alone make it a CloudEvent', async () => {
    const [delivery] = await receive([
      {
        body: '',
        properties: { userProperties: { specversion: '1.0', id: 'nodata-1', source: '/s', type: 't', subject: 'Euro € 😀 "x" 100%' } },
      },
    ]);
    expect(decode(delivery!)).toEqual({ specversion: '1.0', id: 'nodata-1', source: '/s', type: 't', subject: 'Euro € 😀 "x" 100%' });
  });

  it('what the official SDK writes with MQTT.binary and MQTT.structured', async () => {
    const sdkEvent = new SdkCloudEvent({
      id: 'sdk-1',
      source: '/sdk',
      type: 'com.example.sdk',
      time: '2026-12-01T10:00:00.000Z',
      subject: 'from the SDK',
      datacontenttype: 'application/json',
      data: { n: 1 },
      myext: 'x',
    });
    const binary = MQTT.binary(sdkEvent);
    const structured = MQTT.structured(sdkEvent);
    const asBody = (body: unknown) => (typeof body === 'string' ? body : JSON.stringify(body));
    const [fromBinary, fromStructured] = await receive([
      {
        body: asBody(binary.body),
        properties: {
          contentType: binary.PUBLISH?.['Content Type'] as string,
          // The SDK's event object carries unset attributes as `undefined`; a producer sends only the set ones.
          userProperties: Object.fromEntries(
            Object.entries(binary.headers)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => [k, String(v)]),
          ),
        },
      },
      { body: asBody(structured.body), properties: { contentType: structured.PUBLISH?.['Content Type'] as string } },
    ]);
    const expected = {
      specversion: '1.0',
      id: 'sdk-1',
      source: '/sdk',
      type: 'com.example.sdk',
      time: '2026-12-01T10:00:00.000Z',
      subject: 'from the SDK',
      datacontenttype: 'application/json',
      extensions: { myext: 'x' },
      data: { n: 1 },
    };
    expect(decode(fromBinary!)).toEqual(expected);
    expect(decode(fromStructured!)).toEqual(expected);
  });

  it('messages without a transport id are all handled (twice, then one with x-sb-id), the MessageId is the CloudEvent id', async () => {
    const binary = (id: string, transportId?: string): RawPublish => ({
      body: '',
      properties: {
        userProperties: {
          specversion: '1.0',
          id,
          source: '/foreign',
          type: 'com.example.x',
          ...(transportId === undefined ? {} : { 'x-sb-id': transportId }),
        },
      },
    });
    const deliveries = await receive([binary('no-id-1'), binary('no-id-2'), binary('with-id', 'transport-3')]);
    expect(deliveries.map((d) => d.id)).toEqual(['', '', 'transport-3']);
    expect(deliveries.map((d) => decode(d).id)).toEqual(['no-id-1', 'no-id-2', 'with-id']);
  });

  it("hands up none of the adapter's own x-sb-* properties; the key comes from x-sb-key", async () => {
    const [delivery] = await receive([
      {
        body: '',
        properties: {
          userProperties: {
            specversion: '1.0',
            id: 'own-1',
            source: '/s',
            type: 't',
            'x-sb-key': 'order-7',
            'x-sb-future': 'later',
            'x-custom': 'kept',
          },
        },
      },
    ]);
    expect(delivery!.key).toBe('order-7');
    expect(Object.keys(delivery!.headers).sort()).toEqual(['id', 'source', 'specversion', 'type', 'x-custom']);
    expect(decode(delivery!).id).toBe('own-1');
  });
});

/** Publishes `event` through the adapter and reads the PUBLISH packet with a raw MQTT 5 subscriber. */
async function publishAndRead(event: CloudEvent, options: { mode?: 'binary' | 'structured'; key?: string } = {}): Promise<IPublishPacket> {
  const topic = randomName('bind');
  const mqttTopic = `${prefix}/${topic}`;
  const arrived = new Promise<IPublishPacket>((resolve) => {
    const onMessage = (received: string, _payload: Buffer, packet: IPublishPacket) => {
      if (received !== mqttTopic) return;
      v5.off('message', onMessage);
      resolve(packet);
    };
    v5.on('message', onMessage);
  });
  await v5.subscribeAsync(mqttTopic, { qos: 1 });
  const encoded = encodeCloudEvent(event, broker.binding, options.mode);
  const message: OutgoingMessage = {
    id: event.id,
    topic,
    headers: encoded.headers,
    body: encoded.body,
    ...(options.key === undefined ? {} : { key: options.key }),
  };
  await broker.publish(message);
  const packet = await arrived;
  await v5.unsubscribeAsync(mqttTopic);
  return packet;
}

/**
 * The packet as the SDK's `MQTTMessage`: the PUBLISH record with its Content Type, the user
 * properties as headers, the payload as bytes (as text for a structured event: the SDK parses a
 * string body, and takes any other body for the parsed document).
 */
function sdkMessage(packet: IPublishPacket) {
  const payload = Buffer.from(packet.payload as Buffer);
  const body = packet.properties?.contentType?.startsWith('application/cloudevents+json') ? payload.toString('utf8') : payload;
  return {
    PUBLISH: { 'Content Type': packet.properties?.contentType },
    body,
    payload: body,
    headers: (packet.properties?.userProperties ?? {}) as Record<string, string>,
    'User Properties': (packet.properties?.userProperties ?? {}) as Record<string, string>,
  };
}

function fullEvent(): CloudEvent {
  return createCloudEvent({
    id: `evt-${randomBytes(4).toString('hex')}`,
    source: '/services/orders',
    type: 'com.example.order.placed',
    subject: 'Euro € 😀 "x" 100%',
    time: '2026-12-01T10:00:00.123Z',
    dataschema: 'https://example.com/schemas/order.json',
    data: { order: 42, total: 9.5 },
    extensions: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', datasize: 2048, urgent: true },
  });
}

describe('publish: what the adapter sends, read with the raw client and decoded by the official cloudevents SDK', () => {
  beforeAll(() => {
    direction = 'publish';
  });

  it('structured mode (the default): Content Type application/cloudevents+json (§3.2.1); MQTT.isEvent and MQTT.toEvent read it', async () => {
    expect(broker.binding.mode).toBe('structured');
    const event = fullEvent();
    const packet = await publishAndRead(event);
    expect(packet.properties?.contentType).toBe('application/cloudevents+json; charset=utf-8');
    expect(packet.properties?.userProperties).toEqual({ 'x-sb-id': event.id });
    const message = sdkMessage(packet);
    expect(MQTT.isEvent(message)).toBe(true);
    // Strict mode (the second parameter, missing from the SDK's `Deserializer` type) throws unless `isEvent` holds.
    const toEventStrict = MQTT.toEvent as unknown as (message: unknown, strict: boolean) => SdkCloudEvent;
    const sdk = toEventStrict(message, true);
    expect(sdk.id).toBe(event.id);
    expect(sdk.source).toBe('/services/orders');
    expect(sdk.type).toBe('com.example.order.placed');
    expect(sdk.subject).toBe('Euro € 😀 "x" 100%');
    expect(sdk.time).toBe('2026-12-01T10:00:00.123Z');
    expect(sdk.dataschema).toBe('https://example.com/schemas/order.json');
    expect(sdk.datacontenttype).toBe('application/json');
    expect(sdk.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(sdk.datasize).toBe(2048);
    expect(sdk.urgent).toBe(true);
    expect(sdk.data).toEqual({ order: 42, total: 9.5 });
    expect(() => sdk.validate()).not.toThrow();
  });

  it('binary mode: attributes unprefixed in user properties (§3.1.3.1), datacontenttype in Content Type (§3.1.1); the SDK reads it', async () => {
    const event = fullEvent();
    const packet = await publishAndRead(event, { mode: 'binary' });
    expect(packet.properties?.contentType).toBe('application/json');
    expect(packet.properties?.userProperties).toEqual({
      specversion: '1.0',
      id: event.id,
      source: '/services/orders',
      type: 'com.example.order.placed',
      subject: 'Euro € 😀 "x" 100%',
      time: '2026-12-01T10:00:00.123Z',
      dataschema: 'https://example.com/schemas/order.json',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      datasize: '2048',
      urgent: 'true',
      'x-sb-id': event.id,
    });
    expect(Object.keys(packet.properties?.userProperties ?? {}).filter((name) => name.startsWith('ce-'))).toEqual([]);
    const message = sdkMessage(packet);
    expect(MQTT.isEvent(message)).toBe(true);
    // The SDK's binary reader takes the attributes from the user properties only (it does not read
    // the Content Type property, where the binding puts datacontenttype: checked above).
    const sdk = MQTT.toEvent(message) as SdkCloudEvent;
    expect(sdk).toMatchObject({
      specversion: '1.0',
      id: event.id,
      source: '/services/orders',
      type: 'com.example.order.placed',
      subject: 'Euro € 😀 "x" 100%',
      time: '2026-12-01T10:00:00.123Z',
      dataschema: 'https://example.com/schemas/order.json',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      datasize: '2048',
      urgent: 'true',
    });
    expect(JSON.parse(Buffer.from(packet.payload as Buffer).toString('utf8'))).toEqual({ order: 42, total: 9.5 });
  });

  it('binary mode with binary data: the payload untouched, Content Type application/octet-stream', async () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const packet = await publishAndRead(createCloudEvent({ source: '/s', type: 't.bin', data: bytes }), { mode: 'binary' });
    expect(packet.properties?.contentType).toBe('application/octet-stream');
    expect(Buffer.compare(packet.payload as Buffer, Buffer.from(bytes))).toBe(0);
    expect(MQTT.isEvent(sdkMessage(packet))).toBe(true);
  });

  it('the ordering key travels as x-sb-key, a name no attribute can take', async () => {
    const event = createCloudEvent({ source: '/s', type: 't.key', data: { a: 1 } });
    const packet = await publishAndRead(event, { key: 'customer-42' });
    expect(packet.properties?.userProperties).toEqual({ 'x-sb-key': 'customer-42', 'x-sb-id': event.id });
    expect(MQTT.isEvent(sdkMessage(packet))).toBe(true);
  });
});
