import { randomBytes } from 'node:crypto';
import { connectBlobStore, connectBroker } from '@switchboard/connect';
import { readAllBytes } from '@switchboard/core/kit';
import { type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let emulator: FauxqsServer;
const suffix = randomBytes(4).toString('hex');

beforeAll(async () => {
  emulator = await startFauxqsServer();
});

afterAll(async () => {
  await emulator.stop();
});

describe('sns-sqs:// URLs', () => {
  it('connectBroker opens SNS + SQS at the endpoint and moves a message', async () => {
    const broker = await connectBroker(`${emulator.url}?prefix=sbconnect-${suffix}-&waitTimeSeconds=1`);
    expect(broker.name).toBe('sns-sqs');
    try {
      const topic = `connect-${suffix}`;
      await broker.declareGroup(topic, 'g');
      const received = new Promise<string>((resolve) => {
        void broker.subscribe({ topic, group: 'g' }, async (delivery) => {
          await delivery.ack();
          resolve(Buffer.from(delivery.body).toString());
        });
      });
      await broker.publish({ id: `m-${suffix}`, topic, headers: {}, body: Buffer.from('hello sns-sqs') });
      expect(await received).toBe('hello sns-sqs');
    } finally {
      await broker.close();
    }
  });

  it('connectBlobStore opens the S3 store of the same URL', async () => {
    const store = await connectBlobStore(`${emulator.url}?bucket=sb-connect-${suffix}`, { name: 'demo' });
    try {
      const info = await store.put(Buffer.from('picture bytes'), { mediaType: 'image/png' });
      expect(info.uri).toBe(`blob://demo/sha256/${info.key}`);
      expect((await readAllBytes((await store.get(info.key)).body)).toString()).toBe('picture bytes');
    } finally {
      await store.close();
    }
  });
});
