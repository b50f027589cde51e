import { randomBytes } from 'node:crypto';
import { describeBrokerConformance } from '@switchboard/testkit';
import { afterAll } from 'vitest';
import { createRabbitMqBroker } from '../src/index.js';
import { TopologyTracker } from './topology.js';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `sbt-${randomBytes(4).toString('hex')}.`;
const tracker = new TopologyTracker(url, prefix);

afterAll(() => tracker.cleanup());

describeBrokerConformance('rabbitmq', async () => tracker.track(await createRabbitMqBroker({ url, prefix })), {
  persistent: true,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: true,
  publishDeduplication: false,
  maxMessageBytes: 128 * 1024 * 1024,
  pending: true,
  noResponders: true,
});
