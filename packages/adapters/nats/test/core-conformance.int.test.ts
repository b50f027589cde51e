import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { describeBrokerConformance } from '@switchboard/testkit';
import { createNatsCoreBroker } from '../src/index.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
// A private subject prefix per run: no other test or stream sees these subjects.
const prefix = `sbt-core-${randomBytes(4).toString('hex')}`;

async function maxPayload(): Promise<number> {
  const nc = await connect({ servers: url });
  const value = nc.info?.max_payload ?? 0;
  await nc.close();
  return value;
}

describeBrokerConformance('nats-core (at-most-once)', () => createNatsCoreBroker({ url, prefix }), {
  delivery: 'at-most-once',
  persistent: false,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: false,
  publishDeduplication: false,
  maxMessageBytes: (await maxPayload()) - 8 * 1024,
  ackTimeoutMs: 200,
});
