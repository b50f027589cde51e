import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { createSnsSqsBroker } from '@switchboard/aws';
import { createNatsBroker } from '@switchboard/nats';
import { createPostgresBroker } from '@switchboard/postgres';
import { createRabbitMqBroker } from '@switchboard/rabbitmq';
import { createRedisStreamsBroker } from '@switchboard/redis';
import { type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll } from 'vitest';
import { describeSignedMessaging } from './signing-suite.js';

// The signed-messages suite on every engine with a server (memory and SQLite: signing.test.ts),
// each test under random names, everything it made deleted afterwards.

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function requireBeside(workspacePackage: string): NodeJS.Require {
  return createRequire(createRequire(import.meta.url).resolve(workspacePackage));
}
const amqp = requireBeside('@switchboard/rabbitmq')('amqplib') as typeof import('amqplib');
const pg = requireBeside('@switchboard/postgres')('pg') as typeof import('pg');
const { Redis } = requireBeside('@switchboard/redis')('ioredis') as {
  Redis: new (url: string) => { keys(p: string): Promise<string[]>; del(...k: string[]): Promise<number>; quit(): Promise<unknown> };
};

const suffix = () => randomBytes(4).toString('hex');

describeSignedMessaging('Redis Streams', async () => {
  const prefix = `sbsig-${suffix()}:`;
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
});

describeSignedMessaging('PostgreSQL', async () => {
  const schema = `sbsig_${suffix()}`;
  const broker = createPostgresBroker({ url: POSTGRES_URL, schema, pollIntervalMs: 20 });
  return {
    broker,
    async cleanup() {
      await broker.close();
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
});

describeSignedMessaging('RabbitMQ', async () => {
  const prefix = `sbsig-${suffix()}.`;
  const broker = await createRabbitMqBroker({ url: RABBITMQ_URL, prefix, drainTimeoutMs: 500 });
  return {
    broker,
    async cleanup() {
      await broker.close();
      const connection = await amqp.connect(RABBITMQ_URL);
      const channel = await connection.createChannel();
      // The suite's one topic and its one group (the receiver, service `ledger`).
      await channel.deleteQueue(`${prefix}ledger.messages@ledger`);
      await channel.deleteExchange(`${prefix}ledger.messages`);
      await connection.close();
    },
  };
});

describeSignedMessaging('NATS JetStream', async () => {
  const prefix = `sbsig${suffix()}`;
  const broker = await createNatsBroker({ url: NATS_URL, prefix, drainTimeoutMs: 500 });
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
});

let emulator: FauxqsServer;
beforeAll(async () => {
  emulator = await startFauxqsServer();
});
afterAll(async () => {
  await emulator.stop();
});

describeSignedMessaging('SNS + SQS (fauxqs)', async () => {
  const broker = await createSnsSqsBroker({
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    prefix: `sbsig${suffix()}-`,
    waitTimeSeconds: 1,
  });
  // The emulator is private to this file and stopped with it.
  return { broker, cleanup: () => broker.close() };
});
