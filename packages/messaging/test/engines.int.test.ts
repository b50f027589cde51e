import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import type { Broker } from '@switchboard/core';
import { OperationError } from '@switchboard/core';
import { readAllBytes } from '@switchboard/core/kit';
import { createMemoryBlobStore, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging, type MessagingOptions } from '@switchboard/messaging';
import { createNatsBroker } from '@switchboard/nats';
import { createRabbitMqBroker } from '@switchboard/rabbitmq';
import { createRedisStreamsBroker } from '@switchboard/redis';
import { describe, expect, it } from 'vitest';
import { serviceA, serviceB, until } from './harness.js';

// The messaging scenarios once on each real engine, under random names: proves the CloudEvents
// header bindings (AMQP `cloudEvents:`, NATS `ce-` percent-encoded, `ce-` on Redis) and every layer
// above the broker. Stores are the memory ones: the broker is what is under test here.

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The engines' own clients, used here only to delete what a test created, are loaded from where
 * the adapter packages installed them.
 */
function requireBeside(workspacePackage: string): NodeJS.Require {
  return createRequire(createRequire(import.meta.url).resolve(workspacePackage));
}
const amqp = requireBeside('@switchboard/rabbitmq')('amqplib') as typeof import('amqplib');
interface RedisKeys {
  keys(pattern: string): Promise<string[]>;
  del(...keys: string[]): Promise<number>;
  quit(): Promise<unknown>;
}
const { Redis } = requireBeside('@switchboard/redis')('ioredis') as { Redis: new (url: string) => RedisKeys };

interface RealEngine {
  readonly broker: Broker;
  /** Deletes what the broker created on the server. */
  cleanup(): Promise<void>;
}

/** Remembers the topics and groups a broker touched (for deleting them afterwards). */
function tracked(broker: Broker): { broker: Broker; topics: Set<string>; queues: Set<string> } {
  const topics = new Set<string>();
  const queues = new Set<string>();
  const proxy: Broker = {
    name: broker.name,
    binding: broker.binding,
    capabilities: broker.capabilities,
    publish: (message) => {
      topics.add(message.topic);
      return broker.publish(message);
    },
    publishBatch: (messages) => {
      for (const message of messages) topics.add(message.topic);
      return broker.publishBatch(messages);
    },
    declareGroup: (topic, group) => {
      topics.add(topic);
      queues.add(`${topic}@${group}`);
      return broker.declareGroup(topic, group);
    },
    subscribe: (options, handler) => {
      topics.add(options.topic);
      queues.add(`${options.topic}@${options.group}`);
      return broker.subscribe(options, handler);
    },
    close: () => broker.close(),
  };
  return { broker: proxy, topics, queues };
}

const engines: readonly [string, () => Promise<RealEngine>][] = [
  [
    'nats',
    async () => {
      const prefix = `sbm${randomBytes(4).toString('hex')}`;
      const broker = await createNatsBroker({
        url: NATS_URL,
        prefix,
        drainTimeoutMs: 500,
      });
      return {
        broker,
        async cleanup() {
          await broker.close();
          const nc = await connectNats({ servers: NATS_URL });
          const jsm = await jetstreamManager(nc);
          for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
          await nc.close();
        },
      };
    },
  ],
  [
    'rabbitmq',
    async () => {
      const prefix = `sbm-${randomBytes(4).toString('hex')}.`;
      const { broker, topics, queues } = tracked(await createRabbitMqBroker({ url: RABBITMQ_URL, prefix, drainTimeoutMs: 500 }));
      return {
        broker,
        async cleanup() {
          await broker.close();
          const connection = await amqp.connect(RABBITMQ_URL);
          const channel = await connection.createChannel();
          for (const queue of queues) await channel.deleteQueue(`${prefix}${queue}`);
          for (const topic of topics) await channel.deleteExchange(`${prefix}${topic}`);
          await connection.close();
        },
      };
    },
  ],
  [
    'redis-streams',
    async () => {
      const prefix = `sbm-${randomBytes(4).toString('hex')}:`;
      const broker = createRedisStreamsBroker({ url: REDIS_URL, prefix, pollIntervalMs: 20, drainTimeoutMs: 500 });
      return {
        broker,
        async cleanup() {
          await broker.close();
          const redis = new Redis(REDIS_URL);
          const keys = await redis.keys(`${prefix}*`);
          if (keys.length > 0) await redis.del(...keys);
          await redis.quit();
        },
      };
    },
  ],
];

/** One engine's broker with memory stores; every messaging instance is closed, and the server cleaned, at the end. */
async function withEngine(
  factory: () => Promise<RealEngine>,
  body: (
    make: (options: Partial<MessagingOptions> & { service: string }) => Messaging,
    context: { deadLetters: ReturnType<typeof createMemoryDeadLetterStore>; broker: Broker },
  ) => Promise<void>,
): Promise<void> {
  const engine = await factory();
  const receipts = createMemoryReceiptStore();
  const deadLetters = createMemoryDeadLetterStore();
  const blobs = createMemoryBlobStore({ name: 'engine-blobs' });
  const instances: Messaging[] = [];
  try {
    await body(
      (options) => {
        const instance = createMessaging({
          broker: engine.broker,
          receipts,
          deadLetters,
          blobs,
          retry: { maxAttempts: 3, backoff: { baseMs: 5, maxMs: 20 } },
          handlerTimeoutMs: 5000,
          ...options,
        });
        instances.push(instance);
        return instance;
      },
      { deadLetters, broker: engine.broker },
    );
  } finally {
    await Promise.all(instances.map((instance) => instance.close()));
    await engine.cleanup();
  }
}

describe.each(engines)('messaging on %s', (_name, factory) => {
  it('sends a message the owning service handles, with its CloudEvents context, and records the receipt', async () => {
    await withEngine(factory, async (make) => {
      const a = make({ service: 'service-a' });
      const b = make({ service: 'service-b' });
      const seen: { data: unknown; type: string; source: string; subject?: string; messageId: string }[] = [];
      b.handle(serviceB, 'name.submitted', (data, ctx) => {
        seen.push({ data, type: ctx.type, source: ctx.source, subject: ctx.subject, messageId: ctx.messageId });
      });
      await b.start();
      // A subject that needs percent-encoding on NATS, and a non-ASCII string in the data.
      const sent = await a.send(serviceB, 'name.submitted', { name: 'Åda Lovelace' }, { subject: 'ada % é' });
      await until(() => seen.length === 1, 'the handler', 15_000);
      expect(seen[0]).toEqual({
        data: { name: 'Åda Lovelace' },
        type: 'service-b.name.submitted',
        source: 'service-a',
        subject: 'ada % é',
        messageId: sent.messageId,
      });
      const receipt = await b.receipts.wait(sent.messageId, { timeoutMs: 10_000 });
      expect(receipt?.groups).toEqual([expect.objectContaining({ group: 'service-b', state: 'processed', attempts: 1 })]);
    });
  });

  it('invokes an operation through the broker: the result and a declared error land in the receipt', async () => {
    await withEngine(factory, async (make) => {
      const a = make({ service: 'service-a' });
      const b = make({ service: 'service-b' });
      b.serve(serviceB, {
        save: async ({ name }, ctx) => {
          if (name === 'taken') throw new OperationError('NameTaken', { detail: 'already there' });
          return { id: `${name}-${ctx.via}` };
        },
      });
      await b.start();
      const ok = await a.invoke(serviceB, 'save', { name: 'ada' });
      const taken = await a.invoke(serviceB, 'save', { name: 'taken' });
      const okReceipt = await b.receipts.wait(ok.messageId, { timeoutMs: 10_000 });
      expect(okReceipt?.groups[0]).toMatchObject({ state: 'processed', result: JSON.stringify({ id: 'ada-message' }) });
      const takenReceipt = await b.receipts.wait(taken.messageId, { timeoutMs: 10_000 });
      expect(takenReceipt?.groups[0]).toMatchObject({ state: 'dead-lettered', error: { code: 'NameTaken', status: 409 } });
    });
  });

  it('emits events to two groups: each service gets its own copy', async () => {
    await withEngine(factory, async (make) => {
      const a = make({ service: 'service-a' });
      const c = make({ service: 'service-c' });
      const d = make({ service: 'service-d' });
      const got: Record<string, unknown[]> = { c: [], d: [] };
      c.on(serviceA, 'picture.resized', (data) => {
        got.c!.push(data);
      });
      d.on(serviceA, '*', (data, ctx) => {
        got.d!.push([ctx.type, data]);
      });
      await Promise.all([c.start(), d.start()]);
      await a.emit(serviceA, 'picture.resized', { width: 640 });
      await a.emit(serviceA, 'name.processed');
      await until(() => got.d!.length === 2 && got.c!.length === 1, 'both groups', 15_000);
      // `c` handles only picture.resized: name.processed is dead-lettered for it as unknown-type.
      expect(got.c).toEqual([{ width: 640 }]);
      expect(got.d).toEqual(
        expect.arrayContaining([
          ['service-a.picture.resized', { width: 640 }],
          ['service-a.name.processed', undefined],
        ]),
      );
    });
  });

  it('retries a failing handler with backoff, then dead-letters it with the exact headers and bytes', async () => {
    await withEngine(factory, async (make, { deadLetters, broker }) => {
      const a = make({ service: 'service-a' });
      const b = make({ service: 'service-b' });
      const attempts: number[] = [];
      b.handle(serviceB, 'name.submitted', (_data, ctx) => {
        attempts.push(ctx.attempt);
        throw new Error('always failing');
      });
      await b.start();
      const { messageId } = await a.send(serviceB, 'name.submitted', { name: 'doomed' });
      const receipt = await b.receipts.wait(messageId, { timeoutMs: 20_000 });
      expect(receipt?.groups[0]).toMatchObject({ state: 'dead-lettered', attempts: 3 });
      expect(attempts).toEqual([1, 2, 3]);
      await until(async () => (await deadLetters.list({ messageId })).items.length === 1, 'the dead letter', 10_000);
      const [summary] = (await deadLetters.list({ messageId })).items;
      const entry = await deadLetters.get(summary!.id);
      const prefix = broker.binding.prefix;
      expect(entry).toMatchObject({
        reason: 'max-attempts',
        group: 'service-b',
        topic: 'service-b.messages',
        type: 'service-b.name.submitted',
      });
      expect(entry?.headers[`${prefix}type`]).toBe('service-b.name.submitted');
      expect(entry?.headers[`${prefix}id`]).toBe(messageId);
      expect(JSON.parse(Buffer.from(entry!.body).toString('utf8'))).toEqual({ name: 'doomed' });
      expect(entry?.attempts.map((attempt) => attempt.attempt)).toEqual([1, 2, 3]);
    });
  });

  it('claim-checks an attachment and data over the threshold through the blob store', async () => {
    await withEngine(factory, async (make) => {
      const a = make({ service: 'service-a', claimCheck: { thresholdBytes: 1024 } });
      const b = make({ service: 'service-b' });
      const c = make({ service: 'service-c' });
      const big = 'x'.repeat(50_000);
      const picture = randomBytes(300_000);
      const got: { name?: string; picture?: string; mediaType?: string } = {};
      b.handle(serviceB, 'name.submitted', (data) => {
        got.name = data.name;
      });
      c.on(serviceA, 'picture.processed', async (_data, ctx) => {
        got.picture = createHash('sha256')
          .update(await readAllBytes(ctx.attachment()))
          .digest('hex');
        got.mediaType = ctx.attachmentInfo?.mediaType;
      });
      await Promise.all([b.start(), c.start()]);
      const sent = await a.send(serviceB, 'name.submitted', { name: big });
      await a.emit(serviceA, 'picture.processed', undefined, { attachment: picture, attachmentType: 'image/png' });
      await until(() => got.name !== undefined && got.picture !== undefined, 'both claim-checked messages', 15_000);
      expect(got).toEqual({ name: big, picture: createHash('sha256').update(picture).digest('hex'), mediaType: 'image/png' });
      expect((await b.receipts.wait(sent.messageId, { timeoutMs: 10_000 }))?.groups[0]?.state).toBe('processed');
    });
  });
});
