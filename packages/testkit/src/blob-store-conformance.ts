import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { type BlobStore, isSwitchboardError } from '@switchboard/core';
import { readAllBytes, verifyBlobStream } from '@switchboard/core/kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestClock, testClock } from './store-clock.js';

export interface BlobStoreHarness {
  readonly store: BlobStore;
  /** Damages the stored bytes of `key` behind the store's back (to check hash verification). */
  corrupt?(key: string): Promise<void>;
  /** URIs other than `info.uri` this store must accept for `key`. */
  acceptedUris?(key: string): readonly string[];
  /** Engine-specific URIs the store must refuse (e.g. file URIs outside its root). */
  refusedUris?(key: string): readonly string[];
  teardown?(): Promise<void>;
}

export type BlobStoreFactory = (options: {
  readonly clock: () => number;
  readonly name: string;
}) => BlobStoreHarness | Promise<BlobStoreHarness>;

const MiB = 1024 * 1024;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `total` random bytes in `chunk`-sized pieces, made lazily (never held whole); `digest()` hashes what was yielded. */
function generated(total: number, chunk: number): { source: AsyncGenerator<Uint8Array>; digest(): { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let sent = 0;
  async function* source() {
    while (sent < total) {
      const piece = randomBytes(Math.min(chunk, total - sent));
      hash.update(piece);
      sent += piece.length;
      yield piece;
    }
  }
  return { source: source(), digest: () => ({ sha256: hash.copy().digest('hex'), size: sent }) };
}

async function hashOf(source: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

function isCode(code: Parameters<typeof isSwitchboardError>[1]) {
  return (error: unknown) => isSwitchboardError(error, code);
}

/** The behaviour every `BlobStore` must have. */
export function describeBlobStoreConformance(label: string, factory: BlobStoreFactory): void {
  describe(`BlobStore conformance: ${label}`, () => {
    let clock: TestClock;
    let harness: BlobStoreHarness;
    let store: BlobStore;
    const storeName = `blobs-${randomBytes(3).toString('hex')}`;

    beforeEach(async () => {
      clock = testClock();
      harness = await factory({ clock: clock.now, name: storeName });
      store = harness.store;
    });

    afterEach(async () => {
      await store.close();
      await harness.teardown?.();
    });

    it('stores bytes under their sha256 and returns them with metadata', async () => {
      const bytes = randomBytes(1000);
      const info = await store.put(bytes, { mediaType: 'image/png' });
      expect(info).toMatchObject({ key: sha256(bytes), sha256: sha256(bytes), size: 1000, mediaType: 'image/png', createdAt: clock.now() });
      expect(info.expiresAt).toBeUndefined();
      expect(info.uri).toBe(`blob://${storeName}/sha256/${sha256(bytes)}`);
      expect(store.name).toBe(storeName);
      const object = await store.get(info.key);
      expect(object.info).toEqual(info);
      expect(Buffer.compare(await readAllBytes(object.body), bytes)).toBe(0);
      expect(await store.head(info.key)).toEqual(info);
      expect(await store.has(info.key)).toBe(true);
    });

    it('streams a few MiB in and out, matching the hash', async () => {
      const total = 5 * MiB + 123;
      const input = generated(total, 64 * 1024);
      const info = await store.put(input.source, { mediaType: 'application/octet-stream' });
      const expected = input.digest();
      expect(info.key).toBe(expected.sha256);
      expect(info.size).toBe(total);
      const { body } = await store.get(info.key);
      expect(await hashOf(verifyBlobStream(body, { sha256: info.sha256, size: info.size }))).toEqual(expected);
    });

    it('takes Node and Web readable streams, and empty content', async () => {
      const bytes = randomBytes(3000);
      const fromNode = await store.put(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { mediaType: 'text/plain' });
      expect(fromNode.key).toBe(sha256(bytes));
      const web = Readable.toWeb(Readable.from([randomBytes(10)]));
      const fromWeb = await store.put(web as ReadableStream<Uint8Array>, { mediaType: 'text/plain' });
      expect(fromWeb.size).toBe(10);
      const empty = await store.put(new Uint8Array(0), { mediaType: 'text/plain' });
      expect(empty).toMatchObject({ size: 0, key: sha256(new Uint8Array(0)) });
      expect((await readAllBytes((await store.get(empty.key)).body)).length).toBe(0);
    });

    it('stores identical content once: same key, first media type, later expiry', async () => {
      const bytes = randomBytes(2048);
      const t = clock.now();
      const first = await store.put(bytes, { mediaType: 'image/jpeg', expiresAt: t + 1000 });
      const second = await store.put(bytes, { mediaType: 'image/png', expiresAt: t + 5000 });
      expect(second.key).toBe(first.key);
      expect(second.mediaType).toBe('image/jpeg');
      expect(second.expiresAt).toBe(t + 5000);
      const third = await store.put(bytes, { mediaType: 'image/jpeg', expiresAt: t + 2000 });
      expect(third.expiresAt).toBe(t + 5000);
      const forever = await store.put(bytes, { mediaType: 'image/jpeg' });
      expect(forever.expiresAt).toBeUndefined();
      expect((await store.head(first.key))?.expiresAt).toBeUndefined();
      const parallel = await Promise.all(Array.from({ length: 4 }, () => store.put(bytes, { mediaType: 'image/jpeg' })));
      expect(new Set(parallel.map((i) => i.key))).toEqual(new Set([first.key]));
      expect(Buffer.compare(await readAllBytes((await store.get(first.key)).body), bytes)).toBe(0);
    });

    it('answers absence with SB_CLAIM_CHECK_MISSING, false and undefined', async () => {
      const key = sha256(randomBytes(16));
      await expect(store.get(key)).rejects.toSatisfy(isCode('SB_CLAIM_CHECK_MISSING'));
      await expect(store.get('../../etc/passwd')).rejects.toSatisfy(isCode('SB_CLAIM_CHECK_MISSING'));
      expect(await store.has(key)).toBe(false);
      expect(await store.head(key)).toBeUndefined();
      expect(await store.delete(key)).toBe(false);
    });

    it('deletes a blob', async () => {
      const info = await store.put(randomBytes(100), { mediaType: 'text/plain' });
      expect(await store.delete(info.key)).toBe(true);
      expect(await store.has(info.key)).toBe(false);
      await expect(store.get(info.key)).rejects.toSatisfy(isCode('SB_CLAIM_CHECK_MISSING'));
      expect(await store.delete(info.key)).toBe(false);
    });

    it('detects bytes that do not match the expected hash at the end of the stream', async () => {
      const bytes = randomBytes(200_000);
      const info = await store.put(bytes, { mediaType: 'application/octet-stream' });
      const wrong = sha256(randomBytes(8));
      await expect(readAllBytes(verifyBlobStream((await store.get(info.key)).body, { sha256: wrong }))).rejects.toSatisfy(
        isCode('SB_CLAIM_CHECK_HASH_MISMATCH'),
      );
      await expect(
        readAllBytes(verifyBlobStream((await store.get(info.key)).body, { sha256: info.sha256, size: info.size + 1 })),
      ).rejects.toSatisfy(isCode('SB_CLAIM_CHECK_HASH_MISMATCH'));
      if (harness.corrupt !== undefined) {
        await harness.corrupt(info.key);
        await expect(readAllBytes(verifyBlobStream((await store.get(info.key)).body, info))).rejects.toSatisfy(
          isCode('SB_CLAIM_CHECK_HASH_MISMATCH'),
        );
      }
    });

    it('hides expired blobs at once and deletes them on cleanup', async () => {
      const t = clock.now();
      const short = await store.put(randomBytes(64), { mediaType: 'text/plain', expiresAt: t + 1000 });
      const long = await store.put(randomBytes(64), { mediaType: 'text/plain', expiresAt: t + 60_000 });
      const forever = await store.put(randomBytes(64), { mediaType: 'text/plain' });
      expect(await store.has(short.key)).toBe(true);
      expect(await store.cleanup()).toBe(0);
      clock.advance(1000);
      expect(await store.has(short.key)).toBe(false);
      await expect(store.get(short.key)).rejects.toSatisfy(isCode('SB_CLAIM_CHECK_MISSING'));
      expect(await store.cleanup()).toBe(1);
      expect(await store.has(long.key)).toBe(true);
      expect(await store.cleanup(t + 120_000)).toBe(1);
      expect(await store.has(long.key)).toBe(false);
      expect(await store.has(forever.key)).toBe(true);
      const again = await store.put(randomBytes(64), { mediaType: 'text/plain', expiresAt: t });
      expect(await store.has(again.key)).toBe(false);
    });

    it('stores an expired blob afresh when the same content is put again', async () => {
      const bytes = randomBytes(64);
      const t = clock.now();
      await store.put(bytes, { mediaType: 'text/plain', expiresAt: t + 10 });
      clock.advance(20);
      const renewed = await store.put(bytes, { mediaType: 'text/csv', expiresAt: t + 10_000 });
      expect(renewed).toMatchObject({ mediaType: 'text/csv', expiresAt: t + 10_000, createdAt: t + 20 });
      expect(await store.has(renewed.key)).toBe(true);
    });

    it('stores nothing when the upload is aborted', async () => {
      const bytes = randomBytes(4096);
      const controller = new AbortController();
      async function* slow() {
        yield bytes.subarray(0, 2048);
        controller.abort(new Error('caller gave up'));
        yield bytes.subarray(2048);
      }
      await expect(store.put(slow(), { mediaType: 'text/plain', signal: controller.signal })).rejects.toBeDefined();
      expect(await store.has(sha256(bytes))).toBe(false);
    });

    it('resolves its own URIs and refuses foreign ones and traversal with SB_DATAREF_REFUSED', async () => {
      const info = await store.put(randomBytes(32), { mediaType: 'text/plain' });
      expect(store.resolve(info.uri)).toBe(info.key);
      for (const uri of harness.acceptedUris?.(info.key) ?? []) expect(store.resolve(uri)).toBe(info.key);
      const refused = [
        `blob://other-store/sha256/${info.key}`,
        `blob://${storeName}/sha256/${info.key}?download=1`,
        `blob://${storeName}/sha256/${info.key}#x`,
        `blob://user@${storeName}/sha256/${info.key}`,
        `blob://${storeName}/sha256/../../../etc/passwd`,
        `blob://${storeName}/sha256/${info.key}/../${info.key}`,
        `blob://${storeName}/sha256/${info.key.toUpperCase()}`,
        `blob://${storeName}/md5/${info.key.slice(0, 32)}`,
        `https://example.com/sha256/${info.key}`,
        `http://169.254.169.254/latest/meta-data/`,
        'file:///etc/passwd',
        `file:///tmp/sha256/${info.key.slice(0, 2)}/${info.key}`,
        '../../etc/passwd',
        info.key,
        `data:text/plain,hello`,
        '',
        ...(harness.refusedUris?.(info.key) ?? []),
      ];
      for (const uri of refused) {
        expect(() => store.resolve(uri), uri).toThrow(expect.objectContaining({ code: 'SB_DATAREF_REFUSED' }));
      }
    });

    it('rejects calls after close with SB_CLOSED', async () => {
      await store.close();
      await expect(store.put(randomBytes(8), { mediaType: 'text/plain' })).rejects.toSatisfy(isCode('SB_CLOSED'));
    });
  });
}
