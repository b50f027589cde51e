import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, link, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve as resolvePath } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BlobInfo, type BlobObject, type BlobPutOptions, type BlobSource, type BlobStore, SwitchboardError } from '@switchboard/core';
import {
  assertBlobKey,
  blobChunks,
  blobUri,
  isBlobKey,
  missingBlob,
  parseBlobUri,
  refuseDataref,
  withLaterExpiry,
} from '@switchboard/core/kit';

export interface FsBlobStoreOptions {
  /** Directory holding the blobs; created when missing. Several processes may share it. */
  readonly root: string;
  /** Name used in URIs (`blob://<name>/sha256/<hex>`). Every process sharing `root` must use the same. Default `fs`. */
  readonly name?: string;
  /** Clock in epoch ms. Default `Date.now`. */
  readonly clock?: () => number;
  /**
   * Age after which `cleanup` removes leftovers of interrupted writes (temporary files, data files
   * without metadata), in ms. Default one hour.
   */
  readonly leftoverGraceMs?: number;
}

interface Meta {
  readonly mediaType: string;
  readonly size: number;
  readonly createdAt: number;
  readonly expiresAt?: number;
}

const PUT_ATTEMPTS = 3;

/**
 * `BlobStore` on the local filesystem (`node:fs` only).
 *
 * Layout under `root`: `sha256/<first two hex>/<hex>` holds the bytes, `<hex>.json` next to it the
 * metadata (media type, size, times), `tmp/` the writes in progress. A `put` streams into a
 * temporary file while hashing, flushes it to disk, then renames it into place, so a blob is never
 * visible half-written; the metadata is written first (also by rename), and a blob counts as present
 * only when both files are there. Identical content lands on the same path and is stored once.
 *
 * Across processes, `cleanup` moves an expired blob aside and checks its metadata again before
 * deleting, and `put` checks its result after writing, so a concurrent `put` of the same bytes
 * that extends the expiry keeps the blob; an extremely narrow window remains in which such a put can
 * lose its metadata, after which the blob reads as missing (`SB_CLAIM_CHECK_MISSING`) rather than wrong.
 *
 * Wrapped with `withUploadEvents`, every `put` also emits a `blob.created` event (the upload, with the
 * bytes by claim check) that any service can react to.
 */
export class FsBlobStore implements BlobStore {
  readonly name: string;
  readonly root: string;
  readonly #clock: () => number;
  readonly #graceMs: number;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(options: FsBlobStoreOptions) {
    if (options.root === '') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'blob store root is empty' });
    }
    this.root = resolvePath(options.root);
    this.name = options.name ?? 'fs';
    this.#clock = options.clock ?? Date.now;
    this.#graceMs = options.leftoverGraceMs ?? 3_600_000;
  }

  async put(source: BlobSource, options: BlobPutOptions): Promise<BlobInfo> {
    await this.#prepare();
    options.signal?.throwIfAborted();
    const temp = this.#tempPath('.part');
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        blobChunks(source),
        async function* hashing(chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.byteLength;
            yield chunk;
          }
        },
        (await open(temp, 'wx')).createWriteStream(),
        { signal: options.signal },
      );
      await syncFile(temp);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    const key = hash.digest('hex');
    try {
      for (let attempt = 1; ; attempt++) {
        const info = await this.#commit(key, temp, size, options);
        if (info !== undefined) return info;
        if (attempt >= PUT_ATTEMPTS) {
          throw new SwitchboardError('SB_STORE_UNAVAILABLE', { detail: `blob ${key} was removed while being stored` });
        }
      }
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async get(key: string): Promise<BlobObject> {
    this.#open();
    assertBlobKey(key);
    const meta = await this.#liveMeta(key);
    if (meta === undefined) throw missingBlob(key);
    let handle: FileHandle;
    try {
      handle = await open(this.#dataPath(key), 'r');
    } catch (error) {
      if (isNotFound(error)) throw missingBlob(key);
      throw error;
    }
    return { info: this.#info(key, meta), body: handle.createReadStream() };
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    this.#open();
    if (!isBlobKey(key)) return undefined;
    const meta = await this.#liveMeta(key);
    if (meta === undefined || !(await exists(this.#dataPath(key)))) return undefined;
    return this.#info(key, meta);
  }

  async has(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    if (!isBlobKey(key)) return false;
    const existed = await unlink(this.#dataPath(key)).then(
      () => true,
      (error: unknown) => (isNotFound(error) ? false : Promise.reject(error)),
    );
    await unlink(this.#metaPath(key)).catch(ignoreNotFound);
    return existed;
  }

  async cleanup(now: number = this.#clock()): Promise<number> {
    await this.#prepare();
    let removed = 0;
    const shardsDir = join(this.root, 'sha256');
    for (const shard of await readdir(shardsDir)) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      const names: string[] = await readdir(join(shardsDir, shard)).catch((error: unknown) =>
        isNotFound(error) ? [] : Promise.reject(error),
      );
      const metas = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
      for (const name of names) {
        if (!isBlobKey(name)) continue;
        if (!metas.has(name)) {
          // Data without metadata: an interrupted put or cleanup. Removed once old enough.
          if (await olderThan(this.#dataPath(name), now - this.#graceMs)) await unlink(this.#dataPath(name)).catch(ignoreNotFound);
          continue;
        }
        if (await this.#removeIfExpired(name, now)) removed++;
      }
      for (const key of metas) {
        if (!names.includes(key) && isBlobKey(key) && (await olderThan(this.#metaPath(key), now - this.#graceMs))) {
          await unlink(this.#metaPath(key)).catch(ignoreNotFound);
        }
      }
    }
    for (const name of await readdir(join(this.root, 'tmp'))) {
      const path = join(this.root, 'tmp', name);
      if (await olderThan(path, now - this.#graceMs)) await unlink(path).catch(ignoreNotFound);
    }
    return removed;
  }

  resolve(uri: string): string {
    const key = parseBlobUri(uri, this.name);
    if (key !== undefined) return key;
    if (uri.startsWith('file:')) {
      const fileKey = this.#keyOfFileUri(uri);
      if (fileKey !== undefined) return fileKey;
      throw refuseDataref(uri, 'file URI outside the blob store');
    }
    throw refuseDataref(uri, `not a URI of blob store "${this.name}"`);
  }

  /** The `file:` URI of a stored blob's bytes (accepted back by `resolve`). */
  fileUri(key: string): string {
    assertBlobKey(key);
    return pathToFileURL(this.#dataPath(key)).href;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** Moves the temp file into place (or reuses identical stored bytes); `undefined` when a concurrent cleanup won. */
  async #commit(key: string, temp: string, size: number, options: BlobPutOptions): Promise<BlobInfo | undefined> {
    const now = this.#clock();
    await mkdir(join(this.root, 'sha256', key.slice(0, 2)), { recursive: true });
    const current = await this.#liveMeta(key, now);
    const present = current !== undefined && (await exists(this.#dataPath(key)));
    let meta: Meta;
    if (present) {
      const merged = withLaterExpiry(this.#info(key, current), options.expiresAt);
      meta = { ...current, ...(merged.expiresAt === undefined ? {} : { expiresAt: merged.expiresAt }) };
      if (merged.expiresAt === undefined) {
        const { expiresAt: _e, ...rest } = meta;
        meta = rest;
      }
      if (meta.expiresAt !== current.expiresAt) await this.#writeMeta(key, meta);
    } else {
      meta = {
        mediaType: options.mediaType,
        size,
        createdAt: now,
        ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
      };
      await this.#writeMeta(key, meta);
      // Link, then rename over: atomic, replaces a stale copy, and keeps `temp` for a retry.
      const linked = this.#tempPath('.link');
      await link(temp, linked);
      await rename(linked, this.#dataPath(key));
    }
    const after = await this.#readMeta(key);
    if (after === undefined || !(await exists(this.#dataPath(key)))) return undefined;
    if (meta.expiresAt === undefined ? after.expiresAt !== undefined : after.expiresAt !== undefined && after.expiresAt < meta.expiresAt) {
      return undefined;
    }
    return this.#info(key, after);
  }

  async #removeIfExpired(key: string, now: number): Promise<boolean> {
    const meta = await this.#readMeta(key);
    if (meta?.expiresAt === undefined || meta.expiresAt > now) return false;
    const aside = this.#tempPath('.del');
    try {
      await rename(this.#dataPath(key), aside);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    const again = await this.#readMeta(key);
    if (again !== undefined && (again.expiresAt === undefined || again.expiresAt > now)) {
      // A put extended the blob meanwhile: put the bytes back (unless the put already did).
      if (!(await exists(this.#dataPath(key)))) await rename(aside, this.#dataPath(key));
      await unlink(aside).catch(ignoreNotFound);
      return false;
    }
    await unlink(this.#metaPath(key)).catch(ignoreNotFound);
    await unlink(aside).catch(ignoreNotFound);
    return true;
  }

  #keyOfFileUri(uri: string): string | undefined {
    let path: string;
    try {
      const url = new URL(uri);
      if (url.protocol !== 'file:' || (url.host !== '' && url.host !== 'localhost') || url.search !== '' || url.hash !== '')
        return undefined;
      if (/%2f|%5c|%00/i.test(url.pathname)) return undefined;
      path = fileURLToPath(url);
    } catch {
      return undefined;
    }
    const name = basename(path);
    if (!isBlobKey(name)) return undefined;
    return resolvePath(path) === this.#dataPath(name) && path === this.#dataPath(name) ? name : undefined;
  }

  async #liveMeta(key: string, now: number = this.#clock()): Promise<Meta | undefined> {
    const meta = await this.#readMeta(key);
    if (meta === undefined || (meta.expiresAt !== undefined && meta.expiresAt <= now)) return undefined;
    return meta;
  }

  async #readMeta(key: string): Promise<Meta | undefined> {
    let text: string;
    try {
      text = await readFile(this.#metaPath(key), 'utf8');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    try {
      return JSON.parse(text) as Meta;
    } catch {
      return undefined;
    }
  }

  async #writeMeta(key: string, meta: Meta): Promise<void> {
    const temp = this.#tempPath('.json');
    await writeFile(temp, JSON.stringify(meta), { flag: 'wx' });
    await rename(temp, this.#metaPath(key));
  }

  #info(key: string, meta: Meta): BlobInfo {
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

  #dataPath(key: string): string {
    return join(this.root, 'sha256', key.slice(0, 2), key);
  }

  #metaPath(key: string): string {
    return `${this.#dataPath(key)}.json`;
  }

  #tempPath(suffix: string): string {
    return join(this.root, 'tmp', `${randomBytes(12).toString('hex')}${suffix}`);
  }

  #prepare(): Promise<void> {
    this.#open();
    this.#ready ??= (async () => {
      await mkdir(join(this.root, 'sha256'), { recursive: true });
      await mkdir(join(this.root, 'tmp'), { recursive: true });
    })();
    return this.#ready;
  }

  #open(): void {
    if (this.#closed) throw new SwitchboardError('SB_CLOSED', { detail: 'blob store closed' });
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDWR);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

async function olderThan(path: string, cutoff: number): Promise<boolean> {
  try {
    return (await stat(path)).mtimeMs < cutoff;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}

function ignoreNotFound(error: unknown): void {
  if (!isNotFound(error)) throw error;
}

export function createFsBlobStore(options: FsBlobStoreOptions): FsBlobStore {
  return new FsBlobStore(options);
}
