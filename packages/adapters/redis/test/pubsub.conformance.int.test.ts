import { randomBytes } from 'node:crypto';
import { describeBrokerConformance } from '@switchboard/testkit';
import { createRedisPubSubBroker } from '../src/index.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// A private channel prefix per run.
const prefix = `sbt-ps-${randomBytes(4).toString('hex')}:`;

describeBrokerConformance('redis-pubsub (at-most-once)', () => createRedisPubSubBroker({ url, prefix, membershipIntervalMs: 100 }), {
  delivery: 'at-most-once',
  persistent: false,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: false,
  publishDeduplication: false,
  maxMessageBytes: 1024 * 1024,
  ackTimeoutMs: 200,
});
