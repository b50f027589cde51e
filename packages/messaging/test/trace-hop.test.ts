import type { Broker, OutgoingMessage } from '@switchboard/core';
import { defineContract, event, parseTraceparent } from '@switchboard/core';
import { createHttpService } from '@switchboard/http';
import { createMemoryBroker } from '@switchboard/memory';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMessaging } from '../src/index.js';

/**
 * The envelope carries the creation context, the transport the hop: a consumer continues a valid
 * plain `traceparent` header of the delivery (what a broker client's instrumentation adds), and
 * the event's `traceparent` extension otherwise; the extension itself is never rewritten.
 */
const contract = defineContract({ name: 'hop-test', events: { 'thing.happened': event({ data: z.object({ n: z.number() }) }) } });
const CREATION = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const HOP_TRACE = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

/** The memory broker, with headers added to everything published (an instrumented client). */
function withHeaders(broker: Broker, extra: Record<string, string>): Broker {
  const add = (message: OutgoingMessage): OutgoingMessage => ({ ...message, headers: { ...message.headers, ...extra } });
  const wrapped = Object.create(broker) as Broker;
  Object.assign(wrapped, {
    publish: (message: OutgoingMessage) => broker.publish(add(message)),
    publishBatch: (messages: readonly OutgoingMessage[]) => broker.publishBatch(messages.map(add)),
  });
  return wrapped;
}

async function deliver(extra: Record<string, string>) {
  const broker = createMemoryBroker({ drainTimeoutMs: 200 });
  const consumer = createMessaging({ broker, service: 'hop-consumer', deadLetters: false });
  const producer = createMessaging({ broker: withHeaders(broker, extra), service: 'hop-producer', deadLetters: false });
  const seen: Array<{ traceparent: string | undefined; tracestate: string | undefined; creation: unknown }> = [];
  consumer.on(contract, 'thing.happened', (_data, ctx) => {
    seen.push({ traceparent: ctx.traceparent, tracestate: ctx.tracestate, creation: ctx.event.extensions?.traceparent });
  });
  await consumer.start();
  try {
    await producer.emit(contract, 'thing.happened', { n: 1 }, { traceparent: CREATION, tracestate: 'creation=1' });
    for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(seen).toHaveLength(1);
    return seen[0]!;
  } finally {
    await producer.close();
    await consumer.close();
    await broker.close();
  }
}

describe('trace context: envelope and hop', () => {
  it('continues the delivery’s own traceparent header, with its tracestate; the envelope keeps the creation context', async () => {
    const seen = await deliver({ traceparent: `00-${HOP_TRACE}-1111111111111111-01`, tracestate: 'hop=1' });
    expect(parseTraceparent(seen.traceparent)?.traceId).toBe(HOP_TRACE);
    expect(seen.tracestate).toBe('hop=1');
    expect(parseTraceparent(seen.creation as string)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('falls back to the event’s extension when the hop header is invalid', async () => {
    const seen = await deliver({ traceparent: `00-${HOP_TRACE}-0000000000000000-01`, tracestate: 'hop=1' });
    expect(parseTraceparent(seen.traceparent)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(seen.tracestate).toBe('creation=1');
  });

  it('gives the handler a span of its own, never the creation span itself', async () => {
    const seen = await deliver({});
    expect(seen.traceparent).not.toBe(seen.creation);
    expect(parseTraceparent(seen.traceparent)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('POST /events: the request’s traceparent is the hop, the ce-traceparent the creation context', async () => {
    const broker = createMemoryBroker({ drainTimeoutMs: 200 });
    const consumer = createMessaging({ broker, service: 'hop-consumer', deadLetters: false });
    const seen: Array<{ traceparent: string | undefined; tracestate: string | undefined }> = [];
    consumer.on(contract, 'thing.happened', (_data, ctx) => {
      seen.push({ traceparent: ctx.traceparent, tracestate: ctx.tracestate });
    });
    const http = createHttpService({ contract, handlers: {}, routes: consumer.routes() });
    const { url } = await http.listen({ port: 0, host: '127.0.0.1' });
    try {
      const post = (headers: Record<string, string>) =>
        fetch(`${url}/events`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'ce-specversion': '1.0',
            'ce-id': crypto.randomUUID(),
            'ce-source': '/elsewhere',
            'ce-type': 'hop-test.thing.happened',
            'ce-traceparent': CREATION,
            'ce-tracestate': 'creation=1',
            ...headers,
          },
          body: JSON.stringify({ n: 1 }),
        });
      expect((await post({ traceparent: `00-${HOP_TRACE}-1111111111111111-01`, tracestate: 'hop=1' })).status).toBe(204);
      expect((await post({ traceparent: 'not-a-traceparent', tracestate: 'hop=1' })).status).toBe(204);
      expect(parseTraceparent(seen[0]?.traceparent)?.traceId).toBe(HOP_TRACE);
      expect(seen[0]?.tracestate).toBe('hop=1');
      expect(parseTraceparent(seen[1]?.traceparent)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(seen[1]?.tracestate).toBe('creation=1');
    } finally {
      await http.close();
      await consumer.close();
      await broker.close();
    }
  });
});
