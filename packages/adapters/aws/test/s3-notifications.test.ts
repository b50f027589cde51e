import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseS3Notification } from '../src/index.js';

// The two examples of the S3 "event message structure" page of the AWS documentation, verbatim
// (a PUT record, version 2.1, and the s3:TestEvent S3 sends when a configuration is saved).
const putEvent = readFileSync(new URL('./fixtures/s3-put-event.json', import.meta.url), 'utf8');
const testEvent = readFileSync(new URL('./fixtures/s3-test-event.json', import.meta.url), 'utf8');

/** The SNS envelope an SQS queue subscribed without raw delivery receives. */
function snsEnvelope(message: string): string {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
    TopicArn: 'arn:aws:sns:us-west-2:123456789012:s3-events',
    Subject: 'Amazon S3 Notification',
    Message: message,
    Timestamp: '2026-12-02T06:00:00.000Z',
    SignatureVersion: '1',
    Signature: 'EXAMPLE',
    SigningCertURL: 'https://sns.us-west-2.amazonaws.com/SimpleNotificationService-EXAMPLE.pem',
    UnsubscribeURL: 'https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=EXAMPLE',
  });
}

const expected = {
  eventName: 'ObjectCreated:Put',
  eventTime: '1970-01-01T00:00:00.000Z',
  bucket: 'amzn-s3-demo-bucket',
  key: 'HappyFace.jpg',
  size: 1024,
  eTag: 'd41d8cd98f00b204e9800998ecf8427e',
  versionId: '096fKKXTRTtl3on89fVO.nfljtsv6qko',
  sequencer: '0055AED6DCD90281E5',
};

describe('S3 event notifications', () => {
  it('reads the AWS documentation example, directly and inside the SNS envelope', () => {
    expect(parseS3Notification(putEvent)).toEqual({ kind: 'records', created: [expected], others: 0 });
    expect(parseS3Notification(snsEnvelope(putEvent))).toEqual({ kind: 'records', created: [expected], others: 0 });
  });

  it('recognises the s3:TestEvent, directly and through SNS', () => {
    expect(parseS3Notification(testEvent)).toEqual({ kind: 'test', bucket: 'amzn-s3-demo-bucket' });
    expect(parseS3Notification(snsEnvelope(testEvent))).toEqual({ kind: 'test', bucket: 'amzn-s3-demo-bucket' });
  });

  it('decodes URL-encoded keys (a space as +) and counts the records that are not creations', () => {
    const value = JSON.parse(putEvent);
    const put = value.Records[0];
    const removed = { ...put, eventName: 'ObjectRemoved:Delete' };
    const multipart = {
      ...put,
      eventName: 'ObjectCreated:CompleteMultipartUpload',
      s3: { ...put.s3, object: { key: 'photos/my+cat+%C3%A9t%C3%A9%2B1.jpg', size: 12, eTag: 'abc-2', sequencer: '01' } },
    };
    const parsed = parseS3Notification(JSON.stringify({ Records: [removed, multipart] }));
    expect(parsed).toEqual({
      kind: 'records',
      others: 1,
      created: [
        {
          eventName: 'ObjectCreated:CompleteMultipartUpload',
          eventTime: '1970-01-01T00:00:00.000Z',
          bucket: 'amzn-s3-demo-bucket',
          key: 'photos/my cat été+1.jpg',
          size: 12,
          eTag: 'abc-2',
          sequencer: '01',
        },
      ],
    });
  });

  it('refuses bodies that are no S3 notification with SB_MESSAGE_INVALID', () => {
    for (const body of [
      '',
      'not json',
      '[]',
      '{}',
      '{"Records":[{"eventSource":"aws:sqs"}]}',
      snsEnvelope('{"x":1}'),
      '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}',
      '{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%E0%A4%A"}}}]}',
    ]) {
      expect(() => parseS3Notification(body)).toThrow(expect.objectContaining({ code: 'SB_MESSAGE_INVALID' }));
    }
  });
});
