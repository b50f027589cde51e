import { createCloudEvent, decodeCloudEvent, encodeCloudEvent, type OutgoingMessage } from '@switchboard/core';
import { HTTP, CloudEvent as SdkCloudEvent } from 'cloudevents';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { snsSqsBinding } from '../src/index.js';
import {
  ATTRIBUTE,
  bodyAsText,
  decodeMessage,
  encodeMessage,
  escapeJsonText,
  isAttributeName,
  isAttributeText,
  MAX_ATTRIBUTES,
  messageSize,
  parsePointer,
  pointerText,
} from '../src/wire.js';

function outgoing(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { id: 'm-1', topic: 'orders', headers: {}, body: Buffer.from('hello'), ...overrides };
}

/** What SNS raw delivery hands SQS: the same body and attributes. */
function viaRawDelivery(message: OutgoingMessage) {
  const encoded = encodeMessage(message);
  return decodeMessage({ MessageId: 'sqs-id', Body: encoded.body, MessageAttributes: encoded.attributes });
}

describe('the structured CloudEvent a Switchboard service publishes', () => {
  const event = createCloudEvent({
    type: 'service-a.name.processed',
    source: 'service-a',
    data: { name: 'Ada 😀 Lovelace', note: 'edge \uFFFF' },
    datacontenttype: 'application/json',
    extensions: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  });
  const encoded = encodeCloudEvent(event, snsSqsBinding);
  const wire = encodeMessage({ id: event.id, topic: 'service-a.events', headers: encoded.headers, body: encoded.body });

  it('is the body, with content-type and the routing attributes ce-type and ce-source as message attributes', () => {
    expect(wire.attributes['content-type']?.StringValue).toBe('application/cloudevents+json; charset=utf-8');
    expect(wire.attributes['ce-type']?.StringValue).toBe('service-a.name.processed');
    expect(wire.attributes['ce-source']?.StringValue).toBe('service-a');
    expect(wire.attributes[ATTRIBUTE.id]?.StringValue).toBe(event.id);
    expect(wire.attributes[ATTRIBUTE.body]).toBeUndefined();
  });

  it('carries characters above U+FFFF and U+FFFF itself as JSON escapes, which SQS and the emulator take', () => {
    expect(wire.body).not.toMatch(/[\u{10000}-\u{10FFFF}\uFFFF]/u);
    expect(wire.body).toContain('\\ud83d\\ude00');
    expect(isAttributeText(wire.body)).toBe(true);
  });

  it('is read by the official CloudEvents SDK for JavaScript as the same event', () => {
    const read = HTTP.toEvent({
      headers: { 'content-type': wire.attributes['content-type']!.StringValue! },
      body: wire.body,
    }) as SdkCloudEvent;
    expect(read.id).toBe(event.id);
    expect(read.type).toBe(event.type);
    expect(read.source).toBe(event.source);
    expect(read.data).toEqual({ name: 'Ada 😀 Lovelace', note: 'edge \uFFFF' });
    expect(read.traceparent).toBe(event.extensions?.traceparent);
  });

  it('decodes back through the binding to the event that was sent', () => {
    const decoded = decodeMessage({ MessageId: 'x', Body: wire.body, MessageAttributes: wire.attributes });
    expect(decodeCloudEvent(decoded.headers, decoded.body!, snsSqsBinding)).toEqual(event);
  });
});

describe('events written by others', () => {
  it('reads a structured event the CloudEvents SDK wrote, published with no attributes at all (implied structured)', () => {
    const sdkEvent = new SdkCloudEvent({ type: 'com.example.order.placed', source: '/orders', data: { total: 42 } });
    const decoded = decodeMessage({ MessageId: 'sqs-1', Body: JSON.stringify(sdkEvent) });
    expect(decoded.id).toBe('sqs-1');
    const event = decodeCloudEvent(decoded.headers, decoded.body!, snsSqsBinding);
    expect(event).toMatchObject({ id: sdkEvent.id, type: 'com.example.order.placed', source: '/orders', data: { total: 42 } });
  });

  it('reads a binary-mode event from ce- message attributes', () => {
    const decoded = decodeMessage({
      MessageId: 'sqs-2',
      Body: '{"total":42}',
      MessageAttributes: {
        'ce-specversion': { DataType: 'String', StringValue: '1.0' },
        'ce-id': { DataType: 'String', StringValue: 'order-1' },
        'ce-source': { DataType: 'String', StringValue: '/orders' },
        'ce-type': { DataType: 'String', StringValue: 'com.example.order.placed' },
        'content-type': { DataType: 'String', StringValue: 'application/json' },
      },
    });
    expect(decodeCloudEvent(decoded.headers, decoded.body!, snsSqsBinding)).toMatchObject({ id: 'order-1', data: { total: 42 } });
  });

  it('unwraps the SNS JSON envelope of a subscription without raw delivery, its attributes included', () => {
    // The shape documented at https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
    // (Subject absent); the emulator writes "Subject": null.
    const inner = JSON.stringify({ specversion: '1.0', id: 'e-1', source: '/a', type: 't' });
    for (const subject of [{}, { Subject: null }]) {
      const envelope = JSON.stringify({
        Type: 'Notification',
        MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
        TopicArn: 'arn:aws:sns:us-west-2:123456789012:MyTopic',
        ...subject,
        Message: inner,
        Timestamp: '2012-05-02T00:54:06.655Z',
        SignatureVersion: '1',
        Signature: 'EXAMPLEw6JRN...',
        SigningCertURL: 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem',
        UnsubscribeURL: 'https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe',
        MessageAttributes: {
          'content-type': { Type: 'String', Value: 'application/cloudevents+json' },
          blob: { Type: 'Binary', Value: Buffer.from([1, 2, 3]).toString('base64') },
        },
      });
      const decoded = decodeMessage({ MessageId: 'sqs-3', Body: envelope });
      expect(decoded.snsMessageId).toBe('22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324');
      expect(Buffer.from(decoded.body!).toString()).toBe(inner);
      expect(decoded.headers).toEqual({ 'content-type': 'application/cloudevents+json', blob: 'AQID' });
    }
  });
});

describe('the AWS extended-client pointer', () => {
  it('writes the exact pointer the Java and Python extended clients read', () => {
    expect(pointerText('my-bucket', 'switchboard/sha256/abc')).toBe(
      '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"my-bucket","s3Key":"switchboard/sha256/abc"}]',
    );
  });

  it('reads the current and the legacy pointer, with ExtendedPayloadSize or SQSLargePayloadSize', () => {
    const current = decodeMessage({
      Body: '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"0f9e-uuid"}]',
      MessageAttributes: {
        ExtendedPayloadSize: { DataType: 'Number', StringValue: '300000' },
        other: { DataType: 'String', StringValue: 'v' },
      },
    });
    expect(current.pointer).toMatchObject({ bucket: 'b', key: '0f9e-uuid', size: 300000 });
    expect(current.headers).toEqual({ other: 'v' });
    const legacy = decodeMessage({
      Body: '["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"b","s3Key":"k"}]',
      MessageAttributes: { SQSLargePayloadSize: { DataType: 'Number', StringValue: '12' } },
    });
    expect(legacy.pointer).toMatchObject({ bucket: 'b', key: 'k', size: 12 });
    expect(parsePointer('["Something.Else",{"s3BucketName":"b","s3Key":"k"}]')).toBeUndefined();
  });

  it('delivers a body that only looks like a pointer as it came, the attribute kept', () => {
    const decoded = decodeMessage({
      Body: 'not a pointer',
      MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: '5' } },
    });
    expect(decoded.pointer).toBeUndefined();
    expect(Buffer.from(decoded.body!).toString()).toBe('not a pointer');
    expect(decoded.headers.ExtendedPayloadSize).toBe('5');
  });
});

describe('bodies and attributes AWS cannot carry as they are', () => {
  it('sends binary, invalid UTF-8, control characters and non-JSON text above U+FFFF as base64; empty as a marker', () => {
    expect(bodyAsText(Uint8Array.from([0xff, 0xfe]), undefined)).toBeUndefined();
    expect(bodyAsText(Buffer.from('a\u0001b'), 'text/plain')).toBeUndefined();
    expect(bodyAsText(Buffer.from('😀'), 'text/plain')).toBeUndefined();
    expect(bodyAsText(Buffer.from('"😀"'), 'application/json')).toBe('"\\ud83d\\ude00"');
    expect(bodyAsText(Buffer.from('héllo — 你好\ttab\r\n'), 'text/plain')).toBe('héllo — 你好\ttab\r\n');
    for (const body of [Uint8Array.from([0, 1, 2, 255]), new Uint8Array(0), Buffer.from('😀 plain')]) {
      const back = viaRawDelivery(outgoing({ body }));
      expect(Buffer.from(back.body!).equals(Buffer.from(body))).toBe(true);
    }
  });

  it('keeps JSON equal after escaping', () => {
    const text = JSON.stringify({ a: '😀𝄞', b: ['\uFFFE', 'x'] });
    expect(JSON.parse(escapeJsonText(text))).toEqual(JSON.parse(text));
  });

  it('checks attribute names as SQS does', () => {
    for (const name of ['ce-type', 'content-type', 'a.b', 'X_1']) expect(isAttributeName(name), name).toBe(true);
    for (const name of ['', '.a', 'a.', 'a..b', 'AWS.x', 'amazon.y', 'a:b', 'a b', 'x'.repeat(257)])
      expect(isAttributeName(name), name).toBe(false);
  });

  it('counts the size as AWS does: body plus every attribute name, type and value', () => {
    const attributes = { 'ce-type': { DataType: 'String', StringValue: 'é' }, bin: { DataType: 'Binary', BinaryValue: new Uint8Array(3) } };
    expect(messageSize('ab', attributes)).toBe(2 + (7 + 6 + 2) + (3 + 6 + 3));
  });

  it('keeps a header named __proto__ (a valid attribute name), never a prototype change', () => {
    const headers = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const encoded = encodeMessage(outgoing({ headers, id: 'i', body: new Uint8Array(0) }));
    const back = decodeMessage({ MessageId: 'q', Body: encoded.body, MessageAttributes: encoded.attributes });
    expect(Object.entries(back.headers).sort()).toEqual(Object.entries(headers).sort());
    expect(Object.getPrototypeOf(back.headers)).toBe(Object.prototype);
  });

  it('round-trips any headers, key, id and body through raw delivery, never over 10 valid attributes', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 }), { maxKeys: 25 }),
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.uint8Array({ maxLength: 64 }),
        (headers, key, id, body) => {
          const message = outgoing({ headers, id, body, ...(key === undefined ? {} : { key }) });
          const encoded = encodeMessage(message);
          const names = Object.keys(encoded.attributes);
          expect(names.length).toBeLessThanOrEqual(MAX_ATTRIBUTES);
          for (const name of names) {
            expect(isAttributeName(name)).toBe(true);
            expect(isAttributeText(encoded.attributes[name]!.StringValue!)).toBe(true);
          }
          expect(isAttributeText(encoded.body)).toBe(true);
          const back = decodeMessage({ MessageId: 'q', Body: encoded.body, MessageAttributes: encoded.attributes });
          expect(back.headers).toEqual(headers);
          expect(back.key).toBe(key);
          expect(back.id).toBe(id);
          expect(Buffer.from(back.body!).equals(Buffer.from(body))).toBe(true);
        },
      ),
      { numRuns: 300, seed: 20261201 },
    );
  });
});
