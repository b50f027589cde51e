import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PutBucketNotificationConfigurationCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { blobCreated, defineContract } from '@switchboard/core';
import { readAllBytes } from '@switchboard/core/kit';
import { createMemoryBroker } from '@switchboard/memory';
import { createMessaging } from '@switchboard/messaging';
import { type FauxqsServer, startFauxqsServer, waitFor } from '@switchboard/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3NotificationRelay, S3BlobStore, type S3RelayOutcome } from '../src/index.js';

// fauxqs 1.9.2 stores buckets and objects but has no bucket notifications: no
// PutBucketNotificationConfiguration, and nothing is sent when an object is created. So the
// objects are real (PutObject on the emulator), and their notifications are written by hand in
// the exact AWS format (the documentation's example, with this object's bucket, key, size and
// ETag) and delivered the two ways S3 delivers them: sent to the SQS queue, and published to an
// SNS topic the queue subscribes to (SNS envelope).

const uploads = defineContract({ name: 'uploads', events: { 'blob.created': blobCreated() } });
const example = JSON.parse(readFileSync(new URL('./fixtures/s3-put-event.json', import.meta.url), 'utf8'));
const testEvent = readFileSync(new URL('./fixtures/s3-test-event.json', import.meta.url), 'utf8');

let emulator: FauxqsServer;
let s3: S3Client;
let sqs: SQSClient;
let sns: SNSClient;
const suffix = randomBytes(4).toString('hex');
const bucket = `sb-notify-${suffix}`;

beforeAll(async () => {
  emulator = await startFauxqsServer();
  const config = { endpoint: emulator.endpoint, region: emulator.region, credentials: emulator.credentials };
  s3 = new S3Client({ ...config, forcePathStyle: true });
  sqs = new SQSClient(config);
  sns = new SNSClient(config);
});

afterAll(async () => {
  s3.destroy();
  sqs.destroy();
  sns.destroy();
  await emulator.stop();
});

/** The documentation's record, for an object of this test. */
function record(key: string, size: number, eTag: string, eventName = 'ObjectCreated:Put'): string {
  const [first] = example.Records;
  return JSON.stringify({
    Records: [
      {
        ...first,
        eventTime: new Date().toISOString(),
        eventName,
        awsRegion: emulator.region,
        s3: {
          ...first.s3,
          bucket: { ...first.s3.bucket, name: bucket, arn: `arn:aws:s3:::${bucket}` },
          // S3 writes the key URL-encoded, a space as +.
          object: {
            key: encodeURIComponent(key).replaceAll('%20', '+'),
            size,
            eTag,
            sequencer: `00${randomBytes(8).toString('hex').toUpperCase()}`,
          },
        },
      },
    ],
  });
}

describe('S3 event notifications through SQS and SNS (fauxqs)', () => {
  it('turns ObjectCreated records (direct and in the SNS envelope) into blob.created events a receiver reads by claim check', async () => {
    const store = new S3BlobStore({
      bucket,
      keyPrefix: 'blobs/',
      endpoint: emulator.endpoint,
      region: emulator.region,
      credentials: emulator.credentials,
    });
    // The bucket must exist before the emulator is asked about notifications.
    await store.put(Buffer.from('warm-up'), { mediaType: 'text/plain' });

    // What the emulator does with a notification configuration (S3: 200, then an s3:TestEvent).
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `sb-notify-${suffix}` }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    const configured = await s3
      .send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: bucket,
          NotificationConfiguration: { QueueConfigurations: [{ QueueArn: Attributes!.QueueArn!, Events: ['s3:ObjectCreated:*'] }] },
        }),
      )
      .then(
        () => 'accepted',
        (error: { name?: string }) => `refused: ${error.name}`,
      );
    // fauxqs 1.9.2 answers 200 and does nothing with it: no s3:TestEvent, no record for the uploads
    // below (the relay sees exactly the five messages this test sends, and the queue ends empty).
    expect(configured).toBe('accepted');

    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `sb-notify-${suffix}` }));
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn! }));

    const broker = createMemoryBroker();
    const sender = createMessaging({ broker, service: 'uploads', deadLetters: false, blobs: store });
    const receiver = createMessaging({ broker, service: 'thumbnails', deadLetters: false, blobs: store });
    const seen: { data: unknown; subject?: string; bytes: Buffer; messageId: string }[] = [];
    receiver.on(uploads, 'blob.created', async (data, context) => {
      const bytes = await readAllBytes(context.attachment());
      seen.push({ data, subject: context.subject, bytes, messageId: context.messageId });
    });
    await receiver.start();
    const outcomes: S3RelayOutcome[] = [];
    const errors: unknown[] = [];
    const relay = createS3NotificationRelay({
      sqs,
      queueUrl: QueueUrl!,
      store,
      messaging: sender,
      contract: uploads,
      waitTimeSeconds: 1,
      onMessage: (outcome) => outcomes.push(outcome),
      onError: (error) => errors.push(error),
    });
    try {
      // Two uploads straight to the bucket (a browser with a presigned URL would do the same).
      const photo = randomBytes(3000);
      const put1 = await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'incoming/my photo.jpg', Body: photo, ContentType: 'image/jpeg' }),
      );
      const report = Buffer.from('quarterly report, ünïcode');
      const put2 = await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'incoming/report.txt', Body: report, ContentType: 'text/plain; charset=utf-8' }),
      );
      const etag = (value: string | undefined) => (value ?? '').replaceAll('"', '');
      // Single-part ETags are the MD5 of the bytes, as on S3.
      expect(etag(put1.ETag)).toBe(createHash('md5').update(photo).digest('hex'));

      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: testEvent }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: record('incoming/my photo.jpg', photo.length, etag(put1.ETag)) }));
      await sns.send(
        new PublishCommand({
          TopicArn,
          Message: record('incoming/report.txt', report.length, etag(put2.ETag)),
          Subject: 'Amazon S3 Notification',
        }),
      );
      // The store's own writes are its business (withUploadEvents announces them), not the relay's.
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: record('blobs/sha256/0000', 1, 'x') }));
      // A notification older than the object's current content (the key was written again since).
      await sqs.send(
        new SendMessageCommand({ QueueUrl, MessageBody: record('incoming/report.txt', 3, 'ffffffffffffffffffffffffffffffff') }),
      );
      relay.start();
      await waitFor(() => seen.length === 2 && outcomes.length === 5, 'two events and five messages handled', 30_000);

      const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
      const bySubject = new Map(seen.map((s) => [s.subject, s]));
      expect(bySubject.get('incoming/my photo.jpg')).toMatchObject({
        data: { key: sha(photo), sha256: sha(photo), size: 3000, mediaType: 'image/jpeg', uri: `blob://s3/sha256/${sha(photo)}` },
        bytes: photo,
      });
      expect(bySubject.get('incoming/report.txt')).toMatchObject({
        data: { sha256: sha(report), size: report.length, mediaType: 'text/plain; charset=utf-8' },
        bytes: report,
      });
      expect(outcomes.filter((o) => o.test)).toHaveLength(1);
      expect(outcomes.flatMap((o) => o.skipped.map((s) => s.reason)).sort()).toEqual(['stale', 'store-layout']);
      expect(errors).toEqual([]);
      // A redelivered notification gives the same MessageId (the receivers' inbox takes it once).
      const again = await relay.handle(
        record('incoming/my photo.jpg', photo.length, etag(put1.ETag)).replace(
          /"sequencer":"[0-9A-F]+"/,
          '"sequencer":"0055AED6DCD90281E5"',
        ),
      );
      const twice = await relay.handle(
        record('incoming/my photo.jpg', photo.length, etag(put1.ETag)).replace(
          /"sequencer":"[0-9A-F]+"/,
          '"sequencer":"0055AED6DCD90281E5"',
        ),
      );
      expect(again.emitted[0]!.messageId).toBe(twice.emitted[0]!.messageId);
      expect(outcomes).toHaveLength(5);
      expect(await emulator.inspectQueue(`sb-notify-${suffix}`)).toMatchObject({ ready: [], inflight: [] });
    } finally {
      await relay.close();
      await receiver.close();
      await broker.close();
      await store.close();
    }
  });
});
