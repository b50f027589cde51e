import { randomBytes, randomUUID } from 'node:crypto';
import { ListSubscriptionsByTopicCommand, ListTopicsCommand, SNSClient } from '@aws-sdk/client-sns';
import { isSwitchboardError, type OutgoingMessage } from '@switchboard/core';
import { DeliveryRecorder, delay, type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSnsSqsBroker } from '../src/index.js';

// The emulator stopped and started again. fauxqs keeps no state across a restart (SQS stores
// messages redundantly across servers until their retention ends,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-basic-architecture.html),
// so the restarted emulator is empty: the adapter, in `create` mode, provisions its
// topic, queues and subscription again on its own when SQS says the queue does not exist (the
// consumer) or SNS that the topic does not (the publisher). This test waits until the consumer
// has provisioned again before publishing, because SNS drops what is published to a topic without
// a subscription: that loss is the emulator's amnesia, not the adapter's.

let emulator: FauxqsServer;
let sns: SNSClient;

beforeAll(async () => {
  emulator = await startFauxqsServer();
  sns = new SNSClient({ endpoint: emulator.endpoint, region: emulator.region, credentials: emulator.credentials, maxAttempts: 1 });
});

afterAll(async () => {
  sns.destroy();
  await emulator.stop();
});

it('publisher and consumer recover after the emulator is stopped and started again', { timeout: 120_000 }, async () => {
  const prefix = `sbr${randomBytes(3).toString('hex')}-`;
  const connection = {
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    prefix,
    waitTimeSeconds: 1,
  };
  const errors: string[] = [];
  const consumer = await createSnsSqsBroker({ ...connection, onError: (_error, action) => errors.push(action) });
  const publisher = await createSnsSqsBroker({ ...connection, publishTimeoutMs: 2000 });
  const topic = `restart-${randomBytes(3).toString('hex')}`;
  const recorder = new DeliveryRecorder();
  try {
    await consumer.subscribe({ topic, group: 'g', maxInFlight: 32 }, recorder.handler);
    const batch = (n: number): OutgoingMessage[] =>
      Array.from({ length: n }, (_, i) => ({ id: randomUUID(), topic, headers: { n: String(i) }, body: Buffer.from(`m${i}`) }));
    const before = batch(200);
    await publisher.publishBatch(before);
    await recorder.waitForUnique(200, 20_000);

    await emulator.stop();
    // While it is down, a publish fails within its timeout with SB_BROKER_UNAVAILABLE: the caller knows.
    const down = await publisher.publish(batch(1)[0]!).catch((e: unknown) => e);
    expect(isSwitchboardError(down, 'SB_BROKER_UNAVAILABLE')).toBe(true);

    await emulator.restart();
    // Publishing right away: SNS says the topic does not exist, the publisher creates it again and
    // the publish resolves. Whether this one message arrives depends on whether the consumer has
    // subscribed again yet (SNS keeps nothing for a topic without subscriptions), so it is not counted.
    await publisher.publish(batch(1)[0]!);
    // The consumer provisions again on its own; wait until its queue is subscribed to the topic.
    const queue = consumer.names(topic, 'g').queue!;
    const snsTopic = consumer.names(topic).topic;
    const subscribed = async () => {
      const { Topics } = await sns.send(new ListTopicsCommand({}));
      const arn = Topics?.find((entry) => entry.TopicArn?.endsWith(`:${snsTopic}`))?.TopicArn;
      if (arn === undefined) return false;
      const { Subscriptions } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }));
      return Subscriptions?.some((entry) => entry.Endpoint?.endsWith(`:${queue}`)) === true;
    };
    const deadline = Date.now() + 30_000;
    while (!(await subscribed().catch(() => false))) {
      if (Date.now() > deadline) throw new Error('the consumer did not provision its queue again');
      await delay(100);
    }
    const after = batch(200);
    await publisher.publishBatch(after);
    // By id, not by count: the uncounted publish above may have arrived and would make 400 early.
    await recorder.waitForIds(
      [...before, ...after].map((message) => message.id),
      30_000,
    );
    const handled = recorder.unique();
    const counted = [...before, ...after];
    const lost = counted.filter((message) => !handled.has(message.id));
    console.log(
      `aws restart test: handled ${counted.length - lost.length} of ${counted.length} (distinct in all ${handled.size}), lost ${lost.length}, ` +
        `receive errors while down ${errors.filter((action) => action.startsWith('receive')).length}`,
    );
    expect(lost).toEqual([]);
    expect(errors.some((action) => action.includes('creating it again'))).toBe(true);
  } finally {
    await consumer.close();
    await publisher.close();
  }
});
