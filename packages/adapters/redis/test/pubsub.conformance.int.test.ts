import { randomBytes } from 'node:crypto';
import { AT_MOST_ONCE_FEATURES, describeBrokerConformance } from '@switchboard/testkit';
import { createRedisPubSubBroker } from '../src/index.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// A private channel prefix per run.
const prefix = `sbt-ps-${randomBytes(4).toString('hex')}:`;

describeBrokerConformance('redis-pubsub (at-most-once)', () => createRedisPubSubBroker({ url, prefix, membershipIntervalMs: 100 }), {
  ...AT_MOST_ONCE_FEATURES,
  ordering: 'per-topic',
  maxMessageBytes: 1024 * 1024,
  ackTimeoutMs: 200,
});
