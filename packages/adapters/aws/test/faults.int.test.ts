import { randomBytes, randomUUID } from 'node:crypto';
import { CreateTopicCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { defineContract, event, isSwitchboardError, message } from '@switchboard/core';
import { createMemoryDeadLetterStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { DeliveryRecorder, delay, type FauxqsServer, startFauxqsServer, waitFor } from '@switchboard/testkit';
import { CloudEvent as SdkCloudEvent } from 'cloudevents';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createSnsSqsBroker, type SnsSqsBroker, sqsDeadLetterQueueName } from '../src/index.js';

// The faults of the AWS engine that need no process kill or emulator restart (those are in
// crash.int.test.ts and restart.int.test.ts), each with counts, against a private fauxqs.

let emulator: FauxqsServer;
let sns: SNSClient;
const prefix = `sbx${randomBytes(3).toString('hex')}-`;
const opened: { close(): Promise<void> }[] = [];

const worker = defineContract({
  name: 'worker',
  messages: { 'job.submitted': message({ schema: z.object({ n: z.number().int(), text: z.string().optional() }) }) },
  events: { 'report.ready': event({ data: z.object({ size: z.number() }) }) },
});

beforeAll(async () => {
  emulator = await startFauxqsServer();
  sns = new SNSClient({ endpoint: emulator.endpoint, region: emulator.region, credentials: emulator.credentials });
});

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  sns.destroy();
  await emulator.stop();
});

async function openBroker(options: Parameters<typeof createSnsSqsBroker>[0] = {}): Promise<SnsSqsBroker> {
  const broker = await createSnsSqsBroker({
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    prefix: `${prefix}${randomBytes(2).toString('hex')}-`,
    waitTimeSeconds: 1,
    ...options,
  });
  opened.push(broker);
  return broker;
}

function openMessaging(broker: SnsSqsBroker, service: string, maxAttempts = 3) {
  const deadLetters = createMemoryDeadLetterStore();
  const messaging: Messaging = createMessaging({
    broker,
    service,
    deadLetters,
    retry: { maxAttempts, backoff: { baseMs: 10, maxMs: 50 } },
  });
  opened.push(messaging);
  return { messaging, deadLetters };
}

// Visibility renewal as AWS documents it (each ChangeMessageVisibility sets the timeout from now,
// up to 12 hours from the receive): https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
describe('a handler slower than the visibility timeout', () => {
  it('has its visibility extended while it runs: handled once, never redelivered in parallel', { timeout: 30_000 }, async () => {
    const broker = await openBroker({ visibilityTimeoutSeconds: 1 });
    const topic = `slow-${randomBytes(3).toString('hex')}`;
    let running = 0;
    let parallel = 0;
    const recorder = new DeliveryRecorder(async (delivery) => {
      running += 1;
      if (running > 1) parallel += 1;
      await delay(3500);
      running -= 1;
      await delivery.ack();
    });
    await broker.subscribe({ topic, group: 'g', ackTimeoutMs: 20_000 }, recorder.handler);
    await broker.publish({ id: randomUUID(), topic, headers: {}, body: Buffer.from('slow work') });
    await recorder.waitForCount(1, 10_000);
    // 3.5 s of work against a 1 s visibility timeout, then 2.5 s more for a redelivery to show up.
    await delay(6000);
    expect(recorder.count).toBe(1);
    expect(parallel).toBe(0);
    const state = await emulator.inspectQueue(broker.names(topic, 'g').queue!);
    expect(state?.ready.length).toBe(0);
    expect(state?.inflight.length).toBe(0);
  });
});

describe('a poison message', () => {
  it('is dead-lettered by Switchboard after N receives, with its reason and every attempt', { timeout: 30_000 }, async () => {
    const broker = await openBroker();
    const { messaging, deadLetters } = openMessaging(broker, 'worker', 3);
    const attempts: number[] = [];
    messaging.handle(worker, 'job.submitted', (_data, ctx) => {
      attempts.push(ctx.attempt);
      throw new Error(`poison ${ctx.attempt}`);
    });
    await messaging.start();
    const { messageId } = await messaging.send(worker, 'job.submitted', { n: 1 });
    await waitFor(() => attempts.length >= 3, 'three attempts', 15_000);
    let items: Awaited<ReturnType<typeof deadLetters.list>>['items'] = [];
    await waitFor(
      () => {
        void deadLetters.list({ messageId }).then((page) => {
          items = page.items;
        });
        return items.length === 1;
      },
      'the dead letter',
      10_000,
    );
    expect(attempts).toEqual([1, 2, 3]);
    expect(items[0]).toMatchObject({ reason: 'max-attempts', group: 'worker', type: 'worker.job.submitted' });
    expect(items[0]!.attempts.map((attempt) => attempt.error.detail)).toEqual(['poison 1', 'poison 2', 'poison 3']);
    // Acknowledged once stored: the queue and SQS's own dead-letter queue are empty.
    await delay(1500);
    expect(attempts).toHaveLength(3);
    const queue = broker.names('worker.messages', 'worker').queue!;
    expect((await emulator.inspectQueue(queue))?.ready).toHaveLength(0);
    expect((await emulator.inspectQueue(sqsDeadLetterQueueName(queue)))?.ready).toHaveLength(0);
  });

  it('goes to the SQS dead-letter queue on its own after maxReceiveCount receives when nothing above settles it (the backstop)', {
    timeout: 30_000,
  }, async () => {
    const broker = await openBroker({ maxReceiveCount: 3 });
    const topic = `backstop-${randomBytes(3).toString('hex')}`;
    const recorder = new DeliveryRecorder((delivery) => delivery.nack());
    await broker.subscribe({ topic, group: 'g' }, recorder.handler);
    const sent = { id: randomUUID(), topic, headers: { 'x-case': 'backstop' }, body: Buffer.from('never handled') };
    await broker.publish(sent);
    const deadLetterQueue = sqsDeadLetterQueueName(broker.names(topic, 'g').queue!);
    await waitFor(() => recorder.count >= 3, 'three receives', 15_000);
    let moved = 0;
    await waitFor(
      () => {
        void emulator.inspectQueue(deadLetterQueue).then((state) => {
          moved = state?.ready.length ?? 0;
        });
        return moved === 1;
      },
      'the message in the dead-letter queue',
      10_000,
    );
    await delay(1500);
    expect(recorder.received.map((r) => r.delivery.attempt)).toEqual([1, 2, 3]);
    expect((await emulator.inspectQueue(deadLetterQueue))?.ready[0]?.body).toBe('never handled');
  });
});

describe('300 KiB without a claim check', () => {
  it('is refused with a clear SB_MESSAGE_TOO_LARGE, never truncated, and nothing is delivered', { timeout: 20_000 }, async () => {
    const broker = await openBroker();
    const { messaging } = openMessaging(broker, 'worker');
    let handled = 0;
    messaging.handle(worker, 'job.submitted', () => {
      handled += 1;
    });
    await messaging.start();
    const text = 'z'.repeat(300 * 1024);
    const error = await messaging.send(worker, 'job.submitted', { n: 2, text }).catch((e: unknown) => e);
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    const raw = await broker
      .publish({ id: randomUUID(), topic: 'worker.messages', headers: {}, body: Buffer.from(text) })
      .catch((e: unknown) => e);
    expect(isSwitchboardError(raw, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect(String((raw as Error).message)).toMatch(/307200 bytes, over the limit of 253952/);
    await messaging.send(worker, 'job.submitted', { n: 3 });
    await waitFor(() => handled === 1, 'the small message after them', 10_000);
    await delay(1000);
    expect(handled).toBe(1);
  });
});

describe('foreign producers', () => {
  it('a structured CloudEvent is accepted; bytes that are not a CloudEvent are dead-lettered with the raw body kept', {
    timeout: 20_000,
  }, async () => {
    const broker = await openBroker();
    const { messaging, deadLetters } = openMessaging(broker, 'reports');
    const sizes: number[] = [];
    messaging.on(worker, 'report.ready', (data) => {
      sizes.push(data.size);
    });
    await messaging.start();
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: broker.names('worker.events').topic }));
    const good = new SdkCloudEvent({ type: 'worker.report.ready', source: 'legacy-reports', data: { size: 7 } });
    await sns.send(new PublishCommand({ TopicArn, Message: JSON.stringify(good) }));
    const junk = 'this is not a cloudevent ✗';
    await sns.send(
      new PublishCommand({ TopicArn, Message: junk, MessageAttributes: { origin: { DataType: 'String', StringValue: 'cron' } } }),
    );
    await waitFor(() => sizes.length === 1, 'the structured event', 10_000);
    let items: Awaited<ReturnType<typeof deadLetters.list>>['items'] = [];
    await waitFor(
      () => {
        void deadLetters.list({}).then((page) => {
          items = page.items;
        });
        return items.length === 1;
      },
      'the dead letter of the junk',
      10_000,
    );
    expect(sizes).toEqual([7]);
    expect(items[0]!.reason).toBe('not-cloudevent');
    const full = await deadLetters.get(items[0]!.id);
    expect(Buffer.from(full!.body).toString()).toBe(junk);
    expect(full!.headers).toMatchObject({ origin: 'cron' });
  });
});

// AWS takes characters above U+FFFF in a message body; the emulator refuses them on SendMessage
// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html lists
// #x10000 to #x10FFFF as valid), and both refuse U+FFFF: the adapter escapes them in JSON bodies.
describe('characters SQS and the emulator refuse as they are', () => {
  it('carries emoji and U+FFFF in a message end to end', { timeout: 20_000 }, async () => {
    const broker = await openBroker();
    const { messaging } = openMessaging(broker, 'worker');
    const texts: string[] = [];
    messaging.handle(worker, 'job.submitted', (data) => {
      texts.push(data.text ?? '');
    });
    await messaging.start();
    const text = 'emoji 😀🎉, music 𝄞, edge \uFFFF, and ünïcödé';
    await messaging.send(worker, 'job.submitted', { n: 4, text });
    await waitFor(() => texts.length === 1, 'the message', 10_000);
    expect(texts).toEqual([text]);
  });
});
