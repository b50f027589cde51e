import { randomBytes } from 'node:crypto';
import { describeBrokerConformance, type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll } from 'vitest';
import { createS3BlobStore, createSnsSqsBroker, type S3BlobStore } from '../src/index.js';

let emulator: FauxqsServer;
let store: S3BlobStore;
const prefix = `sbf${randomBytes(3).toString('hex')}-`;

beforeAll(async () => {
  emulator = await startFauxqsServer();
  store = createS3BlobStore({
    bucket: `sb-offload-${randomBytes(4).toString('hex')}`,
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
  });
});

afterAll(async () => {
  await store.close();
  await emulator.stop();
});

// FIFO topics and queues on every topic (ordered per key, publishes deduplicated by the transport
// id), with bodies over SNS's limit offloaded to S3 as AWS extended-client pointers.
describeBrokerConformance(
  'SNS + SQS (FIFO, S3 payload offloading, fauxqs)',
  () =>
    createSnsSqsBroker({
      endpoint: emulator.endpoint,
      region: emulator.region,
      credentials: emulator.credentials,
      prefix,
      fifo: true,
      waitTimeSeconds: 1,
      payloadOffload: { store },
    }),
  {
    persistent: true,
    multiProcess: true,
    ordering: 'per-key',
    delayedRedelivery: true,
    publishDeduplication: true,
    maxMessageBytes: 64 * 1024 * 1024,
    ackTimeoutMs: 1000,
    timeoutMs: 15_000,
  },
);
