import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { type BlobInfo, type BlobObject, type BlobPutOptions, type BlobSource, type BlobStore, SwitchboardError } from '@switchboard/core';
import {
  assertBlobKey,
  blobChunks,
  blobUri,
  describeError,
  isBlobKey,
  missingBlob,
  parseBlobUri,
  readAllBytes,
  refuseDataref,
  verifyBlobStream,
  withLaterExpiry,
} from '@switchboard/core/kit';
import { type AwsConnectionOptions, clientConfig, resolveRegion } from './clients.js';
import { awsErrorName, isNotFound } from './errors.js';

export interface S3BlobStoreOptions extends AwsConnectionOptions {
  /** The bucket. Every service sharing claim checks uses the same one. */
  readonly bucket: string;
  /** An S3 client of your own (its region, endpoint and credentials win). Default: one made from the connection options. */
  readonly client?: S3Client;
  /** Prefix of every key the store writes. Default `switchboard/`. */
  readonly keyPrefix?: string;
  /** Name in the store's URIs (`blob://<name>/sha256/<hex>`); every service sharing the bucket uses the same. Default `s3`. */
  readonly name?: string;
  /** Clock in epoch ms (expiry). Default `Date.now`. */
  readonly clock?: () => number;
  /** `create` (default): create the bucket when it is missing. `verify`: only check that it exists. */
  readonly provision?: 'create' | 'verify';
  /** Content up to this size is uploaded in one `PutObject`; larger content in parts of this size. Default 8 MiB (S3's minimum part is 5 MiB). */
  readonly partBytes?: number;
  /** Age after which `cleanup` removes leftovers of interrupted uploads. Default one hour. */
  readonly leftoverGraceMs?: number;
}

/** Object metadata (`x-amz-meta-*`) the store writes; S3 lower-cases the names. */
const META = { sha256: 'sb-sha256', size: 'sb-size', createdAt: 'sb-created-at', expiresAt: 'sb-expires-at' } as const;
const MIN_PART = 5 * 1024 * 1024;
/** Largest object one `CopyObject` makes (5 GiB), and so the largest blob. */
const MAX_BLOB = 5 * 1024 ** 3;

interface StoredMeta {
  readonly mediaType: string;
  readonly size: number;
  readonly createdAt: number;
  readonly expiresAt?: number;
}

function epochDigits(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

/**
 * `BlobStore` on Amazon S3 (or an S3 emulator): the claim-check store of the SNS/SQS engine.
 *
 * - **Content-addressed.** A blob lives at `<keyPrefix>sha256/<hex>`. Content up to `partBytes`
 *   is hashed in memory and put there directly (with `ChecksumSHA256`, which S3 verifies); larger
 *   content streams into a multipart upload under `<keyPrefix>tmp/`, is hashed on the way, and is
 *   then copied to its address and the upload removed. S3 makes an object visible only complete,
 *   so a blob is never seen half-written, and memory holds one part at most.
 * - **Verified on read, by the store.** `get` streams the bytes through a SHA-256 check against the
 *   key (and the stored size): a damaged object ends in `SB_CLAIM_CHECK_HASH_MISMATCH`, even on an
 *   emulator that neither stores nor checks checksums.
 * - **Expiry.** Media type, size, creation and expiry times are object metadata. An expired blob
 *   is absent at once. Each expiry also writes a marker `<keyPrefix>expiry/<15-digit ms>/<hex>`;
 *   `cleanup` lists markers in time order up to now and deletes the blobs whose expiry (read again
 *   from the blob) has passed — a lifecycle rule with per-object times. Nothing is deleted on ack:
 *   SNS fans a message out to several groups and dead letters keep pointing at the same blob.
 * - **Only its bucket.** `resolve` accepts `blob://<name>/sha256/<hex>` and
 *   `s3://<bucket>/<keyPrefix>sha256/<hex>` of this store, nothing else.
 */
export class S3BlobStore implements BlobStore {
  readonly name: string;
  readonly bucket: string;
  readonly keyPrefix: string;
  readonly client: S3Client;
  readonly #ownClient: boolean;
  readonly #clock: () => number;
  readonly #partBytes: number;
  readonly #graceMs: number;
  readonly #provision: 'create' | 'verify';
  readonly #region: string;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(options: S3BlobStoreOptions) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.bucket)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `"${options.bucket}" is not a valid S3 bucket name` });
    }
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix ?? 'switchboard/';
    this.name = options.name ?? 's3';
    this.#clock = options.clock ?? Date.now;
    this.#partBytes = Math.max(MIN_PART, options.partBytes ?? 8 * 1024 * 1024);
    this.#graceMs = options.leftoverGraceMs ?? 3_600_000;
    this.#provision = options.provision ?? 'create';
    this.#region = resolveRegion(options.region);
    this.#ownClient = options.client === undefined;
    this.client = options.client ?? new S3Client({ ...clientConfig(options, 's3'), forcePathStyle: options.endpoint !== undefined });
  }

  /** Checks (and in `create` mode makes) the bucket now, instead of at the first use: to fail fast at start. */
  async open(): Promise<void> {
    this.#open();
    await this.#prepare();
  }

  /** The S3 key of the blob `key` (a SHA-256 hex). */
  objectKey(key: string): string {
    return `${this.keyPrefix}sha256/${key}`;
  }

  /** The `s3://` URL of a blob (accepted by `resolve`, and what the AWS extended-client pointer names). */
  s3Url(key: string): string {
    return `s3://${this.bucket}/${this.objectKey(key)}`;
  }

  async put(source: BlobSource, options: BlobPutOptions): Promise<BlobInfo> {
    this.#open();
    await this.#prepare();
    const signal = options.signal;
    signal?.throwIfAborted();
    const iterator = blobChunks(source)[Symbol.asyncIterator]();
    const hash = createHash('sha256');
    const first = await this.#readPart(iterator, hash, signal);
    if (first.done) {
      const bytes = Buffer.concat(first.chunks);
      const key = hash.digest('hex');
      return this.#commit(key, bytes.length, options, async (metadata) => {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            Body: bytes,
            ContentLength: bytes.length,
            ContentType: options.mediaType,
            ChecksumSHA256: Buffer.from(key, 'hex').toString('base64'),
            Metadata: metadata,
          }),
          { ...(signal === undefined ? {} : { abortSignal: signal }) },
        );
      });
    }
    return this.#putInParts(iterator, hash, first.chunks, options);
  }

  /** Reads up to one part from `iterator`, hashing it; `done` when the source ended within it. */
  async #readPart(
    iterator: AsyncIterator<Uint8Array>,
    hash: ReturnType<typeof createHash>,
    signal: AbortSignal | undefined,
  ): Promise<{ chunks: Buffer[]; size: number; done: boolean }> {
    const chunks: Buffer[] = [];
    let size = 0;
    while (size < this.#partBytes) {
      const next = await iterator.next();
      signal?.throwIfAborted();
      if (next.done === true) return { chunks, size, done: true };
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      hash.update(chunk);
      chunks.push(chunk);
      size += chunk.length;
    }
    return { chunks, size, done: false };
  }

  async #putInParts(
    iterator: AsyncIterator<Uint8Array>,
    hash: ReturnType<typeof createHash>,
    firstChunks: Buffer[],
    options: BlobPutOptions,
  ): Promise<BlobInfo> {
    const signal = options.signal;
    const call = signal === undefined ? {} : { abortSignal: signal };
    const temp = `${this.keyPrefix}tmp/${randomBytes(12).toString('hex')}`;
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: temp, ContentType: options.mediaType }),
      call,
    );
    const parts: { ETag: string; PartNumber: number }[] = [];
    let size = 0;
    let completed = false;
    try {
      const upload = async (body: Buffer) => {
        const PartNumber = parts.length + 1;
        const output = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key: temp, UploadId, PartNumber, Body: body, ContentLength: body.length }),
          call,
        );
        parts.push({ ETag: output.ETag ?? '', PartNumber });
        size += body.length;
        if (size > MAX_BLOB) throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `a blob is at most ${MAX_BLOB} bytes` });
      };
      // Every part but the last is a full one; reading the next part first tells whether this one is the last.
      let pending = Buffer.concat(firstChunks);
      for (;;) {
        const next = await this.#readPart(iterator, hash, signal);
        await upload(pending);
        if (next.size === 0) break;
        pending = Buffer.concat(next.chunks);
        if (next.done) {
          await upload(pending);
          break;
        }
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: temp, UploadId, MultipartUpload: { Parts: parts } }),
        call,
      );
      completed = true;
      const key = hash.digest('hex');
      return await this.#commit(key, size, options, async (metadata) => {
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            CopySource: `${this.bucket}/${encodeURIComponent(temp).replace(/%2F/g, '/')}`,
            MetadataDirective: 'REPLACE',
            ContentType: options.mediaType,
            ChecksumAlgorithm: 'SHA256',
            Metadata: metadata,
          }),
        );
      });
    } catch (error) {
      if (!completed) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: temp, UploadId })).catch(() => {});
      throw error;
    } finally {
      if (completed) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: temp })).catch(() => {});
    }
  }

  /**
   * Stores `key` with `write` unless a live copy is there already (then its media type stays and
   * its expiry becomes the later of the two), and writes the expiry marker.
   */
  async #commit(key: string, size: number, options: BlobPutOptions, write: (metadata: Record<string, string>) => Promise<void>) {
    const now = this.#clock();
    const current = await this.#headMeta(key);
    if (current !== undefined && (current.expiresAt === undefined || current.expiresAt > now)) {
      const merged = withLaterExpiry(this.#info(key, current), options.expiresAt);
      if (merged.expiresAt !== current.expiresAt) {
        const meta: StoredMeta = { ...current, ...(merged.expiresAt === undefined ? {} : { expiresAt: merged.expiresAt }) };
        if (merged.expiresAt === undefined) delete (meta as { expiresAt?: number }).expiresAt;
        await this.client.send(
          new CopyObjectCommand({
            Bucket: this.bucket,
            Key: this.objectKey(key),
            CopySource: `${this.bucket}/${this.objectKey(key)}`,
            MetadataDirective: 'REPLACE',
            ContentType: current.mediaType,
            Metadata: this.#metadata(key, meta),
          }),
        );
        if (meta.expiresAt !== undefined) await this.#mark(key, meta.expiresAt);
        return this.#info(key, meta);
      }
      return merged;
    }
    const meta: StoredMeta = {
      mediaType: options.mediaType,
      size,
      createdAt: now,
      ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    };
    await write(this.#metadata(key, meta));
    if (meta.expiresAt !== undefined) await this.#mark(key, meta.expiresAt);
    return this.#info(key, meta);
  }

  #metadata(key: string, meta: StoredMeta): Record<string, string> {
    return {
      [META.sha256]: key,
      [META.size]: String(meta.size),
      [META.createdAt]: String(meta.createdAt),
      ...(meta.expiresAt === undefined ? {} : { [META.expiresAt]: String(meta.expiresAt) }),
    };
  }

  async #mark(key: string, expiresAt: number): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: `${this.keyPrefix}expiry/${epochDigits(expiresAt)}/${key}`,
        Body: new Uint8Array(0),
        ContentLength: 0,
      }),
    );
  }

  async get(key: string): Promise<BlobObject> {
    this.#open();
    assertBlobKey(key);
    let output: { Body?: unknown; Metadata?: Record<string, string> | undefined; ContentType?: string | undefined };
    try {
      output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (error) {
      if (isNotFound(error)) throw missingBlob(key);
      throw unavailable(error, `get blob ${key}`);
    }
    const body = output.Body as Readable;
    const meta = readMeta(output.Metadata, output.ContentType);
    if (meta === undefined || (meta.expiresAt !== undefined && meta.expiresAt <= this.#clock())) {
      body.destroy();
      throw missingBlob(key);
    }
    return { info: this.#info(key, meta), body: verifyBlobStream(body, { sha256: key, size: meta.size }) };
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    this.#open();
    if (!isBlobKey(key)) return undefined;
    const meta = await this.#headMeta(key);
    if (meta === undefined || (meta.expiresAt !== undefined && meta.expiresAt <= this.#clock())) return undefined;
    return this.#info(key, meta);
  }

  async has(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    if (!isBlobKey(key)) return false;
    if ((await this.#headMeta(key)) === undefined) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
    return true;
  }

  async cleanup(now: number = this.#clock()): Promise<number> {
    this.#open();
    await this.#prepare();
    let removed = 0;
    const markers = `${this.keyPrefix}expiry/`;
    const done: string[] = [];
    let token: string | undefined;
    scan: do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: markers, ...(token === undefined ? {} : { ContinuationToken: token }) }),
      );
      for (const object of page.Contents ?? []) {
        const match = /^(\d{15})\/([0-9a-f]{64})$/.exec((object.Key ?? '').slice(markers.length));
        if (match === null) continue;
        if (Number(match[1]) > now) break scan;
        const key = match[2]!;
        const meta = await this.#headMeta(key);
        if (meta?.expiresAt !== undefined && meta.expiresAt <= now) {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
          removed++;
        }
        done.push(object.Key!);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    await this.#deleteKeys(done);
    await this.#removeLeftovers();
    return removed;
  }

  /** Uploads interrupted between their multipart upload and the copy to their address. */
  async #removeLeftovers(): Promise<void> {
    const cutoff = Date.now() - this.#graceMs;
    const stale: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: `${this.keyPrefix}tmp/`,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined && object.LastModified !== undefined && object.LastModified.getTime() < cutoff) stale.push(object.Key);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    await this.#deleteKeys(stale);
  }

  async #deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const slice = keys.slice(i, i + 1000);
      await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: slice.map((Key) => ({ Key })), Quiet: true } }),
      );
    }
  }

  resolve(uri: string): string {
    const key = parseBlobUri(uri, this.name);
    if (key !== undefined) return key;
    const prefix = `s3://${this.bucket}/${this.keyPrefix}sha256/`;
    if (uri.startsWith(prefix) && isBlobKey(uri.slice(prefix.length))) return uri.slice(prefix.length);
    throw refuseDataref(uri, `not a URI of blob store "${this.name}" (bucket ${this.bucket})`);
  }

  /**
   * The bytes of any object of this store's bucket (an AWS extended-client pointer names one),
   * at most `maxBytes`; a blob of this store's layout is checked against its hash. Refuses other
   * buckets with `SB_DATAREF_REFUSED`.
   */
  async readObject(bucket: string, objectKey: string, maxBytes: number, expectedSize?: number): Promise<Uint8Array> {
    this.#open();
    if (bucket !== this.bucket) throw refuseDataref(`s3://${bucket}/${objectKey}`, `only bucket ${this.bucket} is read`);
    if (expectedSize !== undefined && expectedSize > maxBytes) {
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `the payload is ${expectedSize} bytes, over ${maxBytes}` });
    }
    const own = objectKey.startsWith(`${this.keyPrefix}sha256/`) ? objectKey.slice(this.keyPrefix.length + 7) : undefined;
    if (own !== undefined && isBlobKey(own)) {
      const { body, info } = await this.get(own);
      if (info.size > maxBytes) {
        body.destroy();
        throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `the payload is ${info.size} bytes, over ${maxBytes}` });
      }
      return new Uint8Array(await readAllBytes(body));
    }
    let output: { Body?: unknown; ContentLength?: number };
    try {
      output = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFound(error)) throw new SwitchboardError('SB_CLAIM_CHECK_MISSING', { detail: `no object s3://${bucket}/${objectKey}` });
      throw unavailable(error, `read s3://${bucket}/${objectKey}`);
    }
    const body = output.Body as Readable;
    if ((output.ContentLength ?? 0) > maxBytes) {
      body.destroy();
      throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `the payload is ${output.ContentLength} bytes, over ${maxBytes}` });
    }
    const bytes = await readAllBytes(body);
    if (expectedSize !== undefined && bytes.length !== expectedSize) {
      throw new SwitchboardError('SB_CLAIM_CHECK_HASH_MISMATCH', { detail: `expected ${expectedSize} bytes, got ${bytes.length}` });
    }
    return new Uint8Array(bytes);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ownClient) this.client.destroy();
  }

  async #headMeta(key: string): Promise<StoredMeta | undefined> {
    try {
      const output = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return readMeta(output.Metadata, output.ContentType);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw unavailable(error, `head blob ${key}`);
    }
  }

  #info(key: string, meta: StoredMeta): BlobInfo {
    return {
      key,
      sha256: key,
      size: meta.size,
      mediaType: meta.mediaType,
      uri: blobUri(this.name, key),
      createdAt: meta.createdAt,
      ...(meta.expiresAt === undefined ? {} : { expiresAt: meta.expiresAt }),
    };
  }

  /** Checks (and in `create` mode makes) the bucket, once. */
  #prepare(): Promise<void> {
    this.#ready ??= this.#ensureBucket().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (error) {
      if (!isNotFound(error) && awsErrorName(error) !== 'NoSuchBucket') throw unavailable(error, `check bucket ${this.bucket}`);
    }
    if (this.#provision === 'verify') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `S3 bucket ${this.bucket} does not exist (provision: verify)` });
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          ...(this.#region === 'us-east-1' ? {} : { CreateBucketConfiguration: { LocationConstraint: this.#region as never } }),
        }),
      );
    } catch (error) {
      if (awsErrorName(error) === 'BucketAlreadyOwnedByYou') return;
      if (awsErrorName(error) === 'BucketAlreadyExists') {
        throw new SwitchboardError('SB_CONFIG_INVALID', {
          detail: `S3 bucket ${this.bucket} belongs to another account (bucket names are global): choose another`,
          cause: error,
        });
      }
      throw unavailable(error, `create bucket ${this.bucket}`);
    }
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'blob store closed' });
  }
}

function readMeta(metadata: Record<string, string> | undefined, contentType: string | undefined): StoredMeta | undefined {
  if (metadata === undefined) return undefined;
  const size = Number(metadata[META.size]);
  const createdAt = Number(metadata[META.createdAt]);
  if (!Number.isSafeInteger(size) || !Number.isFinite(createdAt)) return undefined;
  const expires = metadata[META.expiresAt];
  return {
    mediaType: contentType ?? 'application/octet-stream',
    size,
    createdAt,
    ...(expires === undefined ? {} : { expiresAt: Number(expires) }),
  };
}

function unavailable(error: unknown, action: string): SwitchboardError {
  if (error instanceof SwitchboardError) return error;
  return new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `S3: ${action}: ${describeError(error)}`, cause: error });
}

/** A new S3 blob store (see {@link S3BlobStore}). */
export function createS3BlobStore(options: S3BlobStoreOptions): S3BlobStore {
  return new S3BlobStore(options);
}
