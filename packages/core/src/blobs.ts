import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { SwitchboardError } from './errors.js';

/**
 * Blob stores hold claim-checked attachments: a large payload is stored once, content-addressed by
 * its SHA-256, and the event carries only a reference (`dataref` = `uri`, plus the hash).
 *
 * Contract every store keeps (checked by the conformance suite in `@switchboard/testkit`):
 * - `put` streams: it hashes while writing and never holds a whole stream in memory (the memory
 *   store excepted, which is its storage), and the blob becomes visible only complete (written to a
 *   temporary place, then moved atomically).
 * - Identical content is stored once: the key is the SHA-256. A second `put` of the same bytes keeps
 *   the stored bytes and media type and extends the expiry to the later of the two (no expiry wins).
 * - An expired blob is absent for `get` and `has` at once; `cleanup` reclaims its space.
 * - `get` returns the stored bytes; checking them against the hash the event carries is the
 *   consumer's job (`verifyBlobStream`).
 * - `resolve` accepts only URIs of this store and refuses anything else with `SB_DATAREF_REFUSED`,
 *   so an event cannot make a consumer read an arbitrary path or URL.
 * - Absence is `SB_CLAIM_CHECK_MISSING` from `get`; `has` answers false; `delete` answers false.
 *
 * The shape follows object stores (S3: PutObject, GetObject, HeadObject, DeleteObject, lifecycle
 * expiry), so an S3 store implements it directly.
 */

/** What `put` takes: bytes, a Node or Web readable stream, or any async iterable of chunks. */
export type BlobSource = Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

export interface BlobPutOptions {
  /** Media type of the content, e.g. `image/png`. */
  readonly mediaType: string;
  /** When the blob may be deleted (epoch ms). Default: never. */
  readonly expiresAt?: number;
  /** Aborts the upload; nothing is stored. */
  readonly signal?: AbortSignal;
}

export interface BlobInfo {
  /** Content address: lowercase hex SHA-256 of the bytes. */
  readonly key: string;
  /** Lowercase hex SHA-256 (equal to `key`; kept separate so other addressings stay possible). */
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
  /** Reference to put on the event (`dataref`), e.g. `blob://<store-name>/sha256/<hex>`. */
  readonly uri: string;
  readonly createdAt: number;
  readonly expiresAt?: number;
}

export interface BlobObject {
  readonly info: BlobInfo;
  /** The stored bytes, streamed. Consume or destroy it. */
  readonly body: Readable;
}

export interface BlobStore {
  /** The store's name, part of its URIs. */
  readonly name: string;
  /** Stores the content (streaming, hashing while writing) and returns its address. */
  put(source: BlobSource, options: BlobPutOptions): Promise<BlobInfo>;
  /** Streams a blob; `SB_CLAIM_CHECK_MISSING` when absent or expired. */
  get(key: string): Promise<BlobObject>;
  /** Metadata only, or `undefined` when absent or expired. */
  head(key: string): Promise<BlobInfo | undefined>;
  has(key: string): Promise<boolean>;
  /** Deletes a blob; `false` when it was not there. */
  delete(key: string): Promise<boolean>;
  /** Deletes every blob expired at `now` (default: the store's clock). Returns how many. */
  cleanup(now?: number): Promise<number>;
  /** The key a URI of this store names; `SB_DATAREF_REFUSED` for any other URI. */
  resolve(uri: string): string;
  close(): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether `key` is a well-formed content address (lowercase hex SHA-256). */
export function isBlobKey(key: string): boolean {
  return SHA256_HEX.test(key);
}

/** The portable URI of a blob: `blob://<store-name>/sha256/<hex>`. */
export function blobUri(storeName: string, key: string): string {
  return `blob://${encodeURIComponent(storeName)}/sha256/${key}`;
}

/**
 * Parses `blob://<store-name>/sha256/<hex>` for the store `storeName`; returns the key, or
 * `undefined` when the URI is not of that form or names another store. Nothing else is accepted:
 * no query, no fragment, no credentials, no extra path segments.
 */
export function parseBlobUri(uri: string, storeName: string): string | undefined {
  const match = /^blob:\/\/([^/?#@]+)\/sha256\/([0-9a-f]{64})$/.exec(uri);
  if (match === null) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(match[1] ?? '');
  } catch {
    return undefined;
  }
  return name === storeName ? match[2] : undefined;
}

/** Dedupe rule: the later expiry wins; no expiry (`undefined`) wins over any. */
export function withLaterExpiry(info: BlobInfo, expiresAt: number | undefined): BlobInfo {
  if (info.expiresAt === undefined) return info;
  if (expiresAt === undefined) {
    const { expiresAt: _e, ...rest } = info;
    return rest;
  }
  return expiresAt > info.expiresAt ? { ...info, expiresAt } : info;
}

export function refuseDataref(uri: string, why: string): SwitchboardError {
  const shown = uri.length > 200 ? `${uri.slice(0, 200)}…` : uri;
  return new SwitchboardError('SB_DATAREF_REFUSED', { detail: `${why}: ${shown}` });
}

export function missingBlob(key: string): SwitchboardError {
  return new SwitchboardError('SB_CLAIM_CHECK_MISSING', { detail: `no blob ${key}` });
}

/** Throws `SB_CLAIM_CHECK_MISSING` unless `key` is a well-formed content address. */
export function assertBlobKey(key: string): void {
  if (!isBlobKey(key)) throw new SwitchboardError('SB_CLAIM_CHECK_MISSING', { detail: 'not a sha256 content address' });
}

/** Turns any `BlobSource` into an async iterable of byte chunks. */
export function blobChunks(source: BlobSource): AsyncIterable<Uint8Array> {
  if (source instanceof Uint8Array) {
    return (async function* single() {
      yield source;
    })();
  }
  if (isWebStream(source)) return Readable.fromWeb(source);
  return source;
}

function isWebStream(source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream<Uint8Array>).getReader === 'function' && !(source instanceof Readable);
}

export interface ExpectedBlob {
  /** Lowercase hex SHA-256 the bytes must have. */
  readonly sha256: string;
  /** Byte count the bytes must have, when known. */
  readonly size?: number;
}

/**
 * Passes the bytes of `source` through unchanged while hashing them; when the source ends, the
 * stream errors with `SB_CLAIM_CHECK_HASH_MISMATCH` if the hash (or size) differs from `expected`.
 * A consumer must treat the data as untrusted until the stream has ended without error.
 */
export function verifyBlobStream(source: AsyncIterable<Uint8Array>, expected: ExpectedBlob): Readable {
  const hash = createHash('sha256');
  let size = 0;
  const verifier = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      const actual = hash.digest('hex');
      if (actual !== expected.sha256.toLowerCase() || (expected.size !== undefined && expected.size !== size)) {
        callback(
          new SwitchboardError('SB_CLAIM_CHECK_HASH_MISMATCH', {
            detail: `expected sha256 ${expected.sha256}${expected.size === undefined ? '' : ` (${expected.size} bytes)`}, got ${actual} (${size} bytes)`,
          }),
        );
        return;
      }
      callback();
    },
  });
  const input = source instanceof Readable ? source : Readable.from(source, { objectMode: false });
  input.on('error', (error) => verifier.destroy(error));
  verifier.on('close', () => {
    if (!input.readableEnded) input.destroy();
  });
  return input.pipe(verifier);
}

/** Reads a whole (small) stream into one buffer. For tests and small blobs only. */
export async function readAllBytes(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return Buffer.concat(chunks);
}
