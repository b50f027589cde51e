import { compareEngine } from '../lib/broker-load.js';
import type { Scenario } from '../lib/scenario.js';

/**
 * JetStream: js.publish with msgID (serial, 256 in flight), durable pull consumer with acks; raw client vs adapter
 * Server: `NATS_URL` (default `nats://127.0.0.1:4222`); a row says so when it is not reachable.
 */
export const brokerNats: Scenario = {
  name: 'broker-nats',
  description:
    'JetStream: js.publish with msgID (serial, 256 in flight), durable pull consumer with acks; raw client vs adapter vs messaging transport and full paths',
  run(ctx) {
    return compareEngine(ctx, {
      scenario: 'broker-nats',
      engine: 'nats',
      target: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
      defaultPort: 4222,
      rawLabel: 'raw @nats-io/jetstream',
    });
  },
};
