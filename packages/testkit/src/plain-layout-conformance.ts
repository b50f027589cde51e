import type { Broker, Delivery } from '@switchboard/core';
import { decodeCloudEvent } from '@switchboard/core';
import { afterEach, describe, expect, it } from 'vitest';
import { DeliveryRecorder, randomName } from './broker-helpers.js';

/** A message as a foreign producer writes it in an engine's plain layout (`docs/brokers.md`). */
export interface PlainMessage {
  /** The transport id; left out, the engine names the delivery itself. */
  readonly id?: string;
  /** Left out: no header fields at all. */
  readonly headers?: Readonly<Record<string, string>>;
  /** UTF-8 text of the body; left out: no body. */
  readonly body?: string;
  readonly key?: string;
}

export interface PlainLayoutWriter {
  /** Writes `message` for every group of `topic`, with the engine's own client, as the layout's documentation says. */
  write(topic: string, message: PlainMessage): Promise<void>;
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
/** Raw values: a space, a quote, a percent sign and non-ASCII letters travel as they are, not percent-encoded. */
const SUBJECT = 'caf\u00e9 100% "one"';

function structured(id: string): string {
  return JSON.stringify({
    specversion: '1.0',
    id,
    source: '/shop',
    type: 'com.example.order.paid',
    datacontenttype: 'text/plain',
    data: 'paid',
  });
}

/**
 * Checks that a producer that is not Switchboard can write messages by hand in the engine's plain
 * layout and that the broker's consumers read them as CloudEvents with the broker's binding
 * (`decodeCloudEvent(delivery.headers, delivery.body, broker.binding)`): a binary-mode message
 * (`ce-` attributes with raw values, `content-type`, a transport id and an ordering key), a
 * structured one with its content type, one with neither headers nor content type (read as
 * structured JSON), and a binary one without a transport id, written twice (two deliveries, each
 * named by the engine).
 */
export function describePlainLayout(
  name: string,
  factory: () => Promise<Broker> | Broker,
  writer: () => Promise<PlainLayoutWriter> | PlainLayoutWriter,
): void {
  describe(`plain layout written by hand: ${name}`, () => {
    const opened: Broker[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((broker) => broker.close()));
    });

    it('reads binary and structured messages, and one without a transport id written twice, as CloudEvents', async () => {
      const broker = await factory();
      opened.push(broker);
      const producer = await writer();
      const topic = randomName('orders');
      const group = randomName('billing');
      await broker.declareGroup(topic, group);
      await producer.write(topic, {
        id: 'transport-1',
        headers: {
          'ce-specversion': '1.0',
          'ce-id': 'order-1',
          'ce-source': '/shop',
          'ce-subject': SUBJECT,
          'ce-type': 'com.example.order.placed',
          'ce-time': '2026-12-01T10:00:00Z',
          'ce-traceparent': TRACEPARENT,
          'content-type': 'application/json',
        },
        body: '{"total":12.5}',
        key: 'customer-7',
      });
      await producer.write(topic, {
        headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
        body: structured('order-2'),
      });
      await producer.write(topic, { body: structured('order-3') });
      const shipped = { 'ce-specversion': '1.0', 'ce-id': 'order-4', 'ce-source': '/shop', 'ce-type': 'com.example.order.shipped' };
      for (let i = 0; i < 2; i++) await producer.write(topic, { headers: shipped });

      const recorder = new DeliveryRecorder();
      await broker.subscribe({ topic, group }, recorder.handler);
      await recorder.waitForCount(5, 10_000);
      const deliveries = recorder.received.map((r) => r.delivery) as Delivery[];
      const events = deliveries.map((d) => decodeCloudEvent(d.headers, d.body, broker.binding));
      expect(events[0]).toMatchObject({
        specversion: '1.0',
        id: 'order-1',
        source: '/shop',
        subject: SUBJECT,
        type: 'com.example.order.placed',
        time: '2026-12-01T10:00:00Z',
        datacontenttype: 'application/json',
        data: { total: 12.5 },
        extensions: { traceparent: TRACEPARENT },
      });
      expect(deliveries[0]!.id).toBe('transport-1');
      expect(deliveries[0]!.key).toBe('customer-7');
      expect(events[1]).toMatchObject({ id: 'order-2', type: 'com.example.order.paid', datacontenttype: 'text/plain', data: 'paid' });
      expect(events[2]).toMatchObject({ id: 'order-3', data: 'paid' });
      for (const event of events.slice(3))
        expect(event).toMatchObject({ id: 'order-4', source: '/shop', type: 'com.example.order.shipped' });
      expect(events[3]!.data).toBeUndefined();
      // Without a transport id the engine names each delivery itself: one name per message written.
      expect(deliveries[3]!.id).not.toBe('');
      expect(deliveries[4]!.id).not.toBe('');
      expect(deliveries[3]!.id).not.toBe(deliveries[4]!.id);
      expect(deliveries.slice(1).every((d) => d.key === undefined)).toBe(true);
    });
  });
}
