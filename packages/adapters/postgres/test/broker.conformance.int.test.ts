import { DURABLE_QUEUE_FEATURES, describeBrokerConformance } from '@switchboard/testkit';
import { createPostgresBroker } from '../src/broker.js';
import { testSchema, url } from './schema.js';

const schema = testSchema('sbtest');

describeBrokerConformance('postgres', () => createPostgresBroker({ url, schema, pollIntervalMs: 100 }), {
  ...DURABLE_QUEUE_FEATURES,
  maxMessageBytes: 1024 * 1024,
  ackTimeoutMs: 500,
});
