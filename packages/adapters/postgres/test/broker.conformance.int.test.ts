import { describeBrokerConformance, randomName } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll } from 'vitest';
import { createPostgresBroker } from '../src/broker.js';

const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = randomName('sbtest').replaceAll('-', '_');

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

describeBrokerConformance('postgres', () => createPostgresBroker({ url, schema, pollIntervalMs: 100 }), {
  persistent: true,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: true,
  publishDeduplication: false,
  maxMessageBytes: 1024 * 1024,
  ackTimeoutMs: 500,
});
