import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describeBrokerConformance } from '@switchboard/testkit';
import { afterAll } from 'vitest';
import { createNatsBroker } from '../src/index.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const prefix = `sbt${randomBytes(4).toString('hex')}`;

async function maxPayload(): Promise<number> {
  const nc = await connect({ servers: url });
  const value = nc.info?.max_payload ?? 0;
  await nc.close();
  return value;
}

afterAll(async () => {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix.toUpperCase()}_`)) await jsm.streams.delete(name);
  }
  await nc.close();
});

describeBrokerConformance('nats', () => createNatsBroker({ url, prefix }), {
  persistent: true,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: true,
  publishDeduplication: true,
  maxMessageBytes: (await maxPayload()) - 8 * 1024,
  noResponders: true,
  pending: true,
});

// The same contract with every ack confirmed by JetStream itself (`doubleAck`).
describeBrokerConformance('nats (doubleAck)', () => createNatsBroker({ url, prefix, doubleAck: true }), {
  persistent: true,
  multiProcess: true,
  ordering: 'per-topic',
  delayedRedelivery: true,
  publishDeduplication: true,
  maxMessageBytes: (await maxPayload()) - 8 * 1024,
  noResponders: true,
  pending: true,
});
