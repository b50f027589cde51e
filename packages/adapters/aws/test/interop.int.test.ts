import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateTopicCommand,
  ListSubscriptionsByTopicCommand,
  PublishCommand,
  SetSubscriptionAttributesCommand,
  SNSClient,
} from '@aws-sdk/client-sns';
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { defineContract, event } from '@switchboard/core';
import { readAllBytes } from '@switchboard/core/kit';
import { createMemoryDeadLetterStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { DeliveryRecorder, type FauxqsServer, startFauxqsServer, waitFor } from '@switchboard/testkit';
import { HTTP, CloudEvent as SdkCloudEvent } from 'cloudevents';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createS3BlobStore, createSnsSqsBroker, PAYLOAD_ERROR_HEADER, type S3BlobStore, type SnsSqsBroker } from '../src/index.js';

// Services that do not use Switchboard, on the plain AWS SDK (v3, the same pinned version), and
// the official CloudEvents SDK for JavaScript, against a private fauxqs.

let emulator: FauxqsServer;
let sns: SNSClient;
let sqs: SQSClient;
let s3: S3Client;
let store: S3BlobStore;
const prefix = `sbi${randomBytes(3).toString('hex')}-`;
const bucket = `sb-interop-${randomBytes(4).toString('hex')}`;
const opened: { close(): Promise<void> }[] = [];

const legacy = defineContract({
  name: 'legacy-billing',
  events: { 'invoice.paid': event({ data: z.object({ invoice: z.string(), cents: z.number().int() }) }) },
});

beforeAll(async () => {
  emulator = await startFauxqsServer();
  const config = { endpoint: emulator.endpoint, region: emulator.region, credentials: emulator.credentials };
  sns = new SNSClient(config);
  sqs = new SQSClient(config);
  s3 = new S3Client({ ...config, forcePathStyle: true });
  store = createS3BlobStore({ ...config, bucket });
  await store.open();
});

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  await store.close();
  for (const client of [sns, sqs, s3]) client.destroy();
  await emulator.stop();
});

async function openBroker(options: Parameters<typeof createSnsSqsBroker>[0] = {}): Promise<SnsSqsBroker> {
  const b = await createSnsSqsBroker({
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    prefix,
    waitTimeSeconds: 1,
    ...options,
  });
  opened.push(b);
  return b;
}

async function openMessaging(
  b: SnsSqsBroker,
  service: string,
): Promise<{ messaging: Messaging; deadLetters: ReturnType<typeof createMemoryDeadLetterStore> }> {
  const deadLetters = createMemoryDeadLetterStore();
  const messaging = createMessaging({ broker: b, service, deadLetters, retry: { maxAttempts: 2, backoff: { baseMs: 10 } } });
  opened.push(messaging);
  return { messaging, deadLetters };
}

async function topicArn(b: SnsSqsBroker, topic: string): Promise<string> {
  // The plain publisher creates (or finds) the same SNS topic by its documented name.
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: b.names(topic).topic }));
  return TopicArn!;
}

describe('a publisher without Switchboard', () => {
  it('publishes a CloudEvent with plain sns.publish, as the article does, and a Switchboard service consumes it', async () => {
    const b = await openBroker();
    const { messaging } = await openMessaging(b, 'reporting');
    const received: { data: unknown; messageId: string; source: string }[] = [];
    messaging.on(legacy, 'invoice.paid', (data, ctx) => {
      received.push({ data, messageId: ctx.messageId, source: ctx.source });
    });
    await messaging.start();
    // The minimum a foreign producer sends: a structured CloudEvent as the message, nothing else.
    const cloudEvent = new SdkCloudEvent({
      type: 'legacy-billing.invoice.paid',
      source: 'legacy-billing',
      data: { invoice: 'INV-7', cents: 1250 },
    });
    const { MessageId } = await sns.send(
      new PublishCommand({ TopicArn: await topicArn(b, 'legacy-billing.events'), Message: JSON.stringify(cloudEvent) }),
    );
    expect(MessageId).toBeDefined();
    await waitFor(() => received.length === 1, 'the event', 10_000);
    // The MessageId a Switchboard consumer sees is the CloudEvent id, not SNS's.
    expect(received[0]).toEqual({ data: { invoice: 'INV-7', cents: 1250 }, messageId: cloudEvent.id, source: 'legacy-billing' });
  });

  it('sends a binary-mode CloudEvent straight to the queue with plain sqs.sendMessage', async () => {
    const b = await openBroker();
    const topic = `binary-${randomBytes(3).toString('hex')}`;
    await b.declareGroup(topic, 'g');
    const recorder = new DeliveryRecorder();
    await b.subscribe({ topic, group: 'g' }, recorder.handler);
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: b.names(topic, 'g').queue! }));
    const message = HTTP.binary(new SdkCloudEvent({ type: 'com.example.ping', source: '/pinger', data: { n: 1 } }));
    const attributes: Record<string, { DataType: string; StringValue: string }> = {};
    for (const [name, value] of Object.entries(message.headers)) attributes[name] = { DataType: 'String', StringValue: String(value) };
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: String(message.body), MessageAttributes: attributes }));
    await recorder.waitForCount(1, 10_000);
    const delivery = recorder.received[0]!.delivery;
    expect(delivery.headers['ce-type']).toBe('com.example.ping');
    expect(JSON.parse(Buffer.from(delivery.body).toString())).toEqual({ n: 1 });
  });

  it('is read through the SNS JSON envelope too, when the subscription has raw delivery off', async () => {
    const b = await openBroker();
    const { messaging } = await openMessaging(b, 'envelope-reader');
    const received: string[] = [];
    messaging.on(legacy, 'invoice.paid', (_data, ctx) => {
      received.push(ctx.messageId);
    });
    await messaging.start();
    const arn = await topicArn(b, 'legacy-billing.events');
    const { Subscriptions } = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: arn }));
    const queueName = b.names('legacy-billing.events', 'envelope-reader').queue!;
    const subscription = Subscriptions?.find((entry) => entry.Endpoint?.endsWith(`:${queueName}`));
    await sns.send(
      new SetSubscriptionAttributesCommand({
        SubscriptionArn: subscription!.SubscriptionArn!,
        AttributeName: 'RawMessageDelivery',
        AttributeValue: 'false',
      }),
    );
    await messaging.emit(legacy, 'invoice.paid', { invoice: 'INV-8', cents: 1 });
    await waitFor(() => received.length === 1, 'the event through the envelope', 10_000);
  });
});

describe('a consumer without Switchboard', () => {
  it('reads what Switchboard publishes with plain sqs.receiveMessage and the official CloudEvents SDK', async () => {
    const b = await openBroker();
    const { messaging } = await openMessaging(b, 'legacy-billing');
    await b.declareGroup('legacy-billing.events', 'plain-reader');
    const sent = await messaging.emit(legacy, 'invoice.paid', { invoice: 'INV-9 😀', cents: 99 });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: b.names('legacy-billing.events', 'plain-reader').queue! }));
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }));
    const message = Messages![0]!;
    const contentType = message.MessageAttributes?.['content-type']?.StringValue;
    expect(contentType).toMatch(/^application\/cloudevents\+json/);
    expect(message.MessageAttributes?.['ce-type']?.StringValue).toBe('legacy-billing.invoice.paid');
    expect(message.MessageAttributes?.['ce-source']?.StringValue).toBe('legacy-billing');
    const read = HTTP.toEvent({ headers: { 'content-type': contentType! }, body: message.Body! }) as SdkCloudEvent;
    expect(read.id).toBe(sent.messageId);
    expect(read.data).toEqual({ invoice: 'INV-9 😀', cents: 99 });
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle! }));
  });
});

describe('the AWS extended client convention (Java, Python)', () => {
  it('reads a pointer another client wrote: the S3 object under its own key, ExtendedPayloadSize', async () => {
    const b = await openBroker({ payloadOffload: { store } });
    const topic = `extended-${randomBytes(3).toString('hex')}`;
    await b.declareGroup(topic, 'g');
    const recorder = new DeliveryRecorder();
    await b.subscribe({ topic, group: 'g' }, recorder.handler);
    const payload = JSON.stringify({ specversion: '1.0', id: randomUUID(), source: '/java', type: 'big', data: 'x'.repeat(300_000) });
    const key = randomUUID();
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: payload }));
    await sns.send(
      new PublishCommand({
        TopicArn: await topicArn(b, topic),
        Message: JSON.stringify(['software.amazon.payloadoffloading.PayloadS3Pointer', { s3BucketName: bucket, s3Key: key }]),
        MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: String(Buffer.byteLength(payload)) } },
      }),
    );
    await recorder.waitForCount(1, 10_000);
    expect(Buffer.from(recorder.received[0]!.delivery.body).toString()).toBe(payload);
    expect(recorder.received[0]!.delivery.headers.ExtendedPayloadSize).toBeUndefined();
  });

  it('writes a pointer another client reads: a body over 256 KiB goes to S3, the message carries the pointer', async () => {
    const b = await openBroker({ payloadOffload: { store } });
    const topic = `offload-${randomBytes(3).toString('hex')}`;
    await b.declareGroup(topic, 'plain');
    const body = Buffer.from(JSON.stringify({ big: 'y'.repeat(400_000) }));
    await b.publish({ id: randomUUID(), topic, headers: { 'content-type': 'application/json' }, body });
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: b.names(topic, 'plain').queue! }));
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }));
    const message = Messages![0]!;
    expect(message.MessageAttributes?.ExtendedPayloadSize).toEqual({ DataType: 'Number', StringValue: String(body.length) });
    const [className, pointer] = JSON.parse(message.Body!) as [string, { s3BucketName: string; s3Key: string }];
    expect(className).toBe('software.amazon.payloadoffloading.PayloadS3Pointer');
    expect(pointer.s3BucketName).toBe(bucket);
    const object = await s3.send(new GetObjectCommand({ Bucket: pointer.s3BucketName, Key: pointer.s3Key }));
    expect(Buffer.compare(await readAllBytes(object.Body as AsyncIterable<Uint8Array>), body)).toBe(0);
  });

  it('fetches only from its own bucket: a pointer elsewhere is delivered as it came, with the reason', async () => {
    const b = await openBroker({ payloadOffload: { store } });
    const topic = `foreign-bucket-${randomBytes(3).toString('hex')}`;
    await b.declareGroup(topic, 'g');
    const recorder = new DeliveryRecorder();
    await b.subscribe({ topic, group: 'g' }, recorder.handler);
    const pointer = JSON.stringify([
      'software.amazon.payloadoffloading.PayloadS3Pointer',
      { s3BucketName: 'someone-elses', s3Key: 'secret' },
    ]);
    await sns.send(
      new PublishCommand({
        TopicArn: await topicArn(b, topic),
        Message: pointer,
        MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: '10' } },
      }),
    );
    await recorder.waitForCount(1, 10_000);
    const delivery = recorder.received[0]!.delivery;
    expect(Buffer.from(delivery.body).toString()).toBe(pointer);
    expect(delivery.headers[PAYLOAD_ERROR_HEADER]).toMatch(/only bucket/);
  });
});

describe('filter policies', () => {
  it('a group that names its event types receives only those (an SNS filter policy on ce-type)', async () => {
    const b = await openBroker({ eventTypes: (_topic, group) => (group === 'picky' ? ['legacy-billing.invoice.paid'] : undefined) });
    const topic = `filtered-${randomBytes(3).toString('hex')}`;
    const picky = new DeliveryRecorder();
    const all = new DeliveryRecorder();
    await b.subscribe({ topic, group: 'picky' }, picky.handler);
    await b.subscribe({ topic, group: 'all' }, all.handler);
    const structured = (type: string) => ({
      id: randomUUID(),
      topic,
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
      body: Buffer.from(JSON.stringify({ specversion: '1.0', id: randomUUID(), source: 'legacy-billing', type })),
    });
    const wanted = structured('legacy-billing.invoice.paid');
    await b.publishBatch([structured('legacy-billing.invoice.voided'), wanted, structured('other.thing')]);
    await all.waitForCount(3, 10_000);
    await picky.waitForCount(1, 10_000);
    expect(picky.ids()).toEqual([wanted.id]);
  });
});
