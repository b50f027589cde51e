import { randomBytes } from 'node:crypto';
import { defineContract, isSwitchboardError, OperationError, operation } from '@switchboard/core';
import { createMessaging } from '@switchboard/messaging';
import { type ConsumeMessage, connect } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRabbitMqBroker } from '../src/index.js';
import { TopologyTracker } from './topology.js';

// Request/reply with RabbitMQ's direct reply-to, proved against amqplib used by hand: a plain
// amqplib client requests what `messaging.serve` serves, the way RabbitMQ documents direct reply-to.

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `sbrr-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, prefix);

afterAll(() => tracker.cleanup());

const greeterOf = (name: string) =>
  defineContract({
    name,
    operations: {
      greet: operation({
        input: z.object({ name: z.string() }),
        output: z.object({ greeting: z.string() }),
        errors: { Shy: { status: 409, data: z.object({ why: z.string() }) } },
      }),
    },
  });
const greeter = greeterOf(`greeter-${randomBytes(3).toString('hex')}`);

describe('RabbitMQ request/reply (direct reply-to)', () => {
  it('answers a plain amqplib direct reply-to request, CloudEvents in the AMQP binding', async () => {
    const broker = tracker.track(await createRabbitMqBroker({ url, prefix }));
    const b = createMessaging({ broker, service: greeter.name, deadLetters: false });
    b.serve(greeter, { greet: async ({ name }) => ({ greeting: `hello ${name}` }) });
    await b.start();
    const connection = await connect(url);
    try {
      const channel = await connection.createChannel();
      const answered = new Promise<ConsumeMessage>((resolve) => {
        void channel.consume('amq.rabbitmq.reply-to', (msg) => msg && resolve(msg), { noAck: true });
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
      const topic = `${greeter.name}.messages.requests`;
      channel.publish(`${prefix}${topic}`, topic, Buffer.from(JSON.stringify({ name: 'amqplib' })), {
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: 'c-1',
        contentType: 'application/json',
        headers: {
          cloudEvents_specversion: '1.0',
          cloudEvents_id: 'raw-1',
          cloudEvents_source: 'raw-client',
          cloudEvents_type: `${greeter.name}.op.greet`,
        },
      });
      const reply = await answered;
      const properties = reply.properties;
      expect(properties.correlationId).toBe('c-1');
      expect(properties.contentType).toBe('application/json');
      expect(String(properties.headers?.cloudEvents_type)).toBe(`${greeter.name}.op.greet.reply`);
      expect(JSON.parse(reply.content.toString('utf8'))).toEqual({ greeting: 'hello amqplib' });
    } finally {
      await connection.close();
      await b.close();
      await broker.close();
    }
  });

  it('messaging.request: the typed answer, the declared error, SB_NO_RESPONDERS when no queue serves it', async () => {
    // A service that never started anywhere: no queue is bound to its requests exchange.
    const greeter = greeterOf(`greeter-${randomBytes(3).toString('hex')}`);
    const broker = tracker.track(await createRabbitMqBroker({ url, prefix }));
    const a = createMessaging({ broker, service: 'asker', deadLetters: false });
    try {
      const nobody = await a.request(greeter, 'greet', { name: 'ada' }, { timeout: 60_000 }).catch((e: unknown) => e);
      expect(isSwitchboardError(nobody, 'SB_NO_RESPONDERS')).toBe(true);
      const b = createMessaging({ broker, service: greeter.name, deadLetters: false });
      b.serve(greeter, {
        greet: async ({ name }) => {
          if (name === 'shy') throw new OperationError('Shy', { data: { why: 'rabbits' } });
          return { greeting: `hello ${name}` };
        },
      });
      await b.start();
      await expect(a.request(greeter, 'greet', { name: 'ada' }, { timeout: 10_000 })).resolves.toEqual({ greeting: 'hello ada' });
      const error = await a.request(greeter, 'greet', { name: 'shy' }, { timeout: 10_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OperationError);
      expect(error).toMatchObject({ code: 'Shy', status: 409, data: { why: 'rabbits' } });
      expect(a.pendingRequests).toBe(0);
      await b.close();
    } finally {
      await a.close();
      await broker.close();
    }
  });
});
