import { randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describeBlobStoreConformance, type FauxqsServer, startFauxqsServer } from '@switchboard/testkit';
import { afterAll, beforeAll } from 'vitest';
import { S3BlobStore } from '../src/index.js';

// S3 verifies and returns `ChecksumSHA256` (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html);
// the emulator does neither, so the store checks the hash itself on every read, which `corrupt` proves.
let emulator: FauxqsServer;
let raw: S3Client;
const bucket = `sb-blobs-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  emulator = await startFauxqsServer();
  raw = new S3Client({ endpoint: emulator.endpoint, region: emulator.region, credentials: emulator.credentials, forcePathStyle: true });
});

afterAll(async () => {
  raw.destroy();
  await emulator.stop();
});

describeBlobStoreConformance('S3 (fauxqs)', ({ clock, name }) => {
  // A key prefix per test: the bucket is shared, the blobs are not.
  const keyPrefix = `t-${randomBytes(4).toString('hex')}/`;
  const store = new S3BlobStore({
    bucket,
    keyPrefix,
    name,
    clock,
    endpoint: emulator.endpoint,
    region: emulator.region,
    credentials: emulator.credentials,
    // The smallest part S3 takes, so the 5 MiB conformance case goes through a multipart upload.
    partBytes: 5 * 1024 * 1024,
  });
  return {
    store,
    // Overwrites the object behind the store's back, keeping its metadata: only the hash check on read can tell.
    async corrupt(key) {
      const head = await store.head(key);
      await raw.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: store.objectKey(key),
          Body: randomBytes(head?.size ?? 16),
          Metadata: { 'sb-sha256': key, 'sb-size': String(head?.size ?? 16), 'sb-created-at': String(head?.createdAt ?? 0) },
          ContentType: head?.mediaType ?? 'application/octet-stream',
        }),
      );
    },
    acceptedUris: (key) => [`s3://${bucket}/${keyPrefix}sha256/${key}`],
    refusedUris: (key) => [
      `s3://other-bucket/${keyPrefix}sha256/${key}`,
      `s3://${bucket}/elsewhere/sha256/${key}`,
      `s3://${bucket}/${keyPrefix}sha256/${key}/extra`,
      `https://${bucket}.s3.amazonaws.com/${keyPrefix}sha256/${key}`,
    ],
  };
});
