import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { type BlobInfo, type BlobObject, type BlobPutOptions, type BlobSource, type BlobStore, SwitchboardError } from '@switchboard/core';
import { assertBlobKey, blobChunks, blobUri, missingBlob, parseBlobUri, refuseDataref, withLaterExpiry } from '@switchboard/core/kit';

export interface MemoryBlobStoreOptions {
  /** Name used in URIs (`blob://<name>/sha256/<hex>`). Default `memory`. */
  readonly name?: string;
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
}

interface Stored {
  info: BlobInfo;
  bytes: Buffer;
}

/** Reference `BlobStore` for one process; the bytes live in memory (tests, small demos). */
export class MemoryBlobStore implements BlobStore {
  readonly name: string;
  readonly #blobs = new Map<string, Stored>();
  readonly #clock: () => number;
  #closed = false;

  constructor(options: MemoryBlobStoreOptions = {}) {
    this.name = options.name ?? 'memory';
    this.#clock = options.clock ?? Date.now;
  }

  async put(source: BlobSource, options: BlobPutOptions): Promise<BlobInfo> {
    this.#open();
    options.signal?.throwIfAborted();
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of blobChunks(source)) {
      options.signal?.throwIfAborted();
      const bytes = Buffer.from(chunk);
      hash.update(bytes);
      chunks.push(bytes);
      size += bytes.length;
    }
    options.signal?.throwIfAborted();
    const key = hash.digest('hex');
    const now = this.#clock();
    const existing = this.#live(key, now);
    if (existing !== undefined) {
      existing.info = withLaterExpiry(existing.info, options.expiresAt);
      return existing.info;
    }
    const info: BlobInfo = {
      key,
      sha256: key,
      size,
      mediaType: options.mediaType,
      uri: blobUri(this.name, key),
      createdAt: now,
      ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    };
    this.#blobs.set(key, { info, bytes: Buffer.concat(chunks, size) });
    return info;
  }

  async get(key: string): Promise<BlobObject> {
    this.#open();
    assertBlobKey(key);
    const stored = this.#live(key, this.#clock());
    if (stored === undefined) throw missingBlob(key);
    return { info: stored.info, body: Readable.from([stored.bytes], { objectMode: false }) };
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    this.#open();
    return this.#live(key, this.#clock())?.info;
  }

  async has(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    return this.#blobs.delete(key);
  }

  async cleanup(now: number = this.#clock()): Promise<number> {
    this.#open();
    let count = 0;
    for (const [key, stored] of this.#blobs) {
      if (stored.info.expiresAt !== undefined && stored.info.expiresAt <= now) {
        this.#blobs.delete(key);
        count++;
      }
    }
    return count;
  }

  resolve(uri: string): string {
    const key = parseBlobUri(uri, this.name);
    if (key === undefined) throw refuseDataref(uri, `not a URI of blob store "${this.name}"`);
    return key;
  }

  /** Test hook: replaces the stored bytes without touching the metadata (simulates corruption). */
  corrupt(key: string, bytes: Uint8Array): void {
    const stored = this.#blobs.get(key);
    if (stored !== undefined) stored.bytes = Buffer.from(bytes);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #live(key: string, now: number): Stored | undefined {
    const stored = this.#blobs.get(key);
    if (stored === undefined) return undefined;
    if (stored.info.expiresAt !== undefined && stored.info.expiresAt <= now) return undefined;
    return stored;
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'blob store closed' });
  }
}

export function createMemoryBlobStore(options?: MemoryBlobStoreOptions): MemoryBlobStore {
  return new MemoryBlobStore(options);
}
