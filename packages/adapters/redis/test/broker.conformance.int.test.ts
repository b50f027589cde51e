import { DURABLE_QUEUE_FEATURES, describeBrokerConformance } from '@switchboard/testkit';
import { afterAll, beforeAll } from 'vitest';
import { createRedisStreamsBroker } from '../src/broker.js';
import { type PrivateRedis, startPrivateRedis } from './broker-redis-server.js';

// The suite runs against a private server configured to keep acknowledged writes (appendonly yes,
// appendfsync always), so the broker is declared, and checked, persistent. Against a server with
// default settings the broker must be declared `persistent: false`.
let server: PrivateRedis;
beforeAll(async () => {
  server = await startPrivateRedis();
});
afterAll(async () => {
  await server.stop();
});

describeBrokerConformance('redis-streams', () => createRedisStreamsBroker({ url: server.url, persistent: true, pollIntervalMs: 50 }), {
  ...DURABLE_QUEUE_FEATURES,
  maxMessageBytes: 1024 * 1024,
  ackTimeoutMs: 500,
});
