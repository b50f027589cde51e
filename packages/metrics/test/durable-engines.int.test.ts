import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import type { Broker } from '@switchboard/core';
import { createMetrics } from '@switchboard/metrics';
import { createPostgresBroker } from '@switchboard/postgres';
import { createRabbitMqBroker } from '@switchboard/rabbitmq';
import { createRedisStreamsBroker } from '@switchboard/redis';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { TopologyTracker } from '../../adapters/rabbitmq/test/topology.js';

const suffix = randomBytes(4).toString('hex');
const postgresUrl = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const schema = `sbm_${suffix}`;
const redisPrefix = `sbm${suffix}:`;
const rabbitUrl = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const rabbitPrefix = `sbm-${suffix}.`;
const topic = `orders${suffix}`;
const tracker = new TopologyTracker(rabbitUrl, rabbitPrefix);

afterAll(async () => {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
  // The Redis Streams broker keeps a topic in the stream `<prefix>{<topic>}`: one DEL in RESP.
  const { hostname, port } = new URL(redisUrl);
  const socket = createConnection({ host: hostname, port: Number(port || 6379) });
  const key = `${redisPrefix}{${topic}}`;
  socket.end(`*2\r\n$3\r\nDEL\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
  socket.resume(); // read the reply, so the server's close is seen
  await once(socket, 'close');
  await tracker.cleanup();
});

const engines: [string, () => Promise<Broker>][] = [
  ['rabbitmq', async () => tracker.track(await createRabbitMqBroker({ url: rabbitUrl, prefix: rabbitPrefix }))],
  ['redis-streams', async () => createRedisStreamsBroker({ url: redisUrl, prefix: redisPrefix })],
  ['postgres', async () => createPostgresBroker({ url: postgresUrl, schema })],
];

describe.each(engines)('queue depth from %s', (system, connect) => {
  it('is what the broker counts for the group, and nothing for a group that does not exist', async () => {
    const broker = await connect();
    const metrics = createMetrics();
    try {
      expect(broker.name).toBe(system);
      await broker.declareGroup(topic, 'billing');
      for (let i = 0; i < 4; i++) await broker.publish({ id: `m${i}`, topic, headers: {}, body: new Uint8Array([i]) });
      expect(await broker.pending?.(topic, 'billing')).toBe(4);
      expect(await broker.pending?.(topic, 'nobody')).toBeUndefined();
      metrics.watchQueue(broker, topic, 'billing');
      metrics.watchQueue(broker, topic, 'nobody');
      const parsed = parsePrometheusTextFormat(await metrics.text());
      const depth = parsed.find((family) => family.name === 'switchboard_queue_depth');
      expect(depth?.metrics).toEqual([
        { value: '4', labels: { messaging_system: system, messaging_destination_name: topic, messaging_consumer_group_name: 'billing' } },
      ]);
    } finally {
      metrics.close();
      await broker.close();
    }
  });
});
