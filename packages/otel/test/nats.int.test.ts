import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { defineContract, event } from '@switchboard/core';
import { createMemoryDeadLetterStore } from '@switchboard/memory';
import { createMessaging, eventsTopic } from '@switchboard/messaging';
import { createNatsBroker } from '@switchboard/nats';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kindName, parentOf, startTracing, until } from './tracing.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbo${randomBytes(4).toString('hex')}`;

const orders = defineContract({
  name: `orders-${randomBytes(3).toString('hex')}`,
  events: { placed: event({ data: z.object({ n: z.number() }) }) },
});

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  }
  await nc.close();
});

describe('OpenTelemetry spans over NATS JetStream', () => {
  it('send, process and settle spans with messaging.system nats, the process linked to the send across the real broker', async () => {
    const tracing = startTracing({ settleSpans: true });
    const broker = await createNatsBroker({ url, prefix });
    const deadLetters = createMemoryDeadLetterStore();
    const a = createMessaging({ service: orders.name, broker, deadLetters });
    const b = createMessaging({ service: 'billing', broker, deadLetters });
    try {
      const seen: number[] = [];
      b.on(orders, 'placed', (data) => {
        seen.push(data.n);
      });
      await b.start();
      const sent = [];
      for (let n = 1; n <= 3; n++) sent.push(await a.emit(orders, 'placed', { n }));
      await until(() => tracing.spans().filter((span) => span.name.startsWith('ack ')).length === 3, 'three settle spans');
      expect(seen.sort()).toEqual([1, 2, 3]);
      const topic = eventsTopic(orders);
      for (const { messageId } of sent) {
        const send = tracing.spans().find((span) => kindName(span) === 'PRODUCER' && span.attributes['messaging.message.id'] === messageId);
        const process = tracing
          .spans()
          .find((span) => kindName(span) === 'CONSUMER' && span.attributes['messaging.message.id'] === messageId);
        const settle = tracing
          .spans()
          .find((span) => span.name === `ack ${topic}` && span.attributes['messaging.message.id'] === messageId);
        expect(send?.name).toBe(`send ${topic}`);
        expect(send?.attributes).toMatchObject({
          'messaging.system': 'nats',
          'messaging.destination.name': topic,
          'cloudevents.event_id': messageId,
        });
        expect(process?.attributes).toMatchObject({
          'messaging.system': 'nats',
          'messaging.operation.type': 'process',
          'messaging.consumer.group.name': 'billing',
        });
        // The creation context crossed NATS in the message's headers and came back as the link.
        expect(process?.links[0]?.context.spanId).toBe(send?.spanContext().spanId);
        expect(process?.links[0]?.context.traceId).toBe(send?.spanContext().traceId);
        expect(parentOf(settle!)).toBe(process?.spanContext().spanId);
        expect(settle?.attributes['messaging.operation.type']).toBe('settle');
      }
    } finally {
      await a.close();
      await b.close();
      await broker.close();
      await tracing.close();
    }
  });
});
