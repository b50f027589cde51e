import { randomBytes } from 'node:crypto';
import { describeBrokerConformance, type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll } from 'vitest';
import { createSnsSqsBroker } from '../src/index.js';

let emulator: FauxqsServer;
const prefix = `sbc${randomBytes(3).toString('hex')}-`;

beforeAll(async () => {
  emulator = await startFauxqsServer();
});

afterAll(async () => {
  await emulator.stop();
});

// Standard topics and queues: no ordering, no publish deduplication, 256 KiB through SNS.
describeBrokerConformance(
  'SNS + SQS (standard, fauxqs)',
  () =>
    createSnsSqsBroker({
      endpoint: emulator.endpoint,
      region: emulator.region,
      credentials: emulator.credentials,
      prefix,
      waitTimeSeconds: 1,
    }),
  {
    persistent: true,
    multiProcess: true,
    ordering: 'none',
    delayedRedelivery: true,
    publishDeduplication: false,
    maxMessageBytes: 253_952,
    // SQS visibility is in whole seconds: the shortest ack timeout it honours exactly is 1 s.
    ackTimeoutMs: 1000,
    timeoutMs: 15_000,
  },
);
