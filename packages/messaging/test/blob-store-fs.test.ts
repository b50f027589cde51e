import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readAllBytes } from '@switchboard/core/kit';
import { createFsBlobStore } from '@switchboard/messaging';
import { describeBlobStoreConformance, testClock } from '@switchboard/testkit';
import { afterEach, describe, expect, it } from 'vitest';

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'sb-blobs-'));
}

function dataPath(root: string, key: string): string {
  return join(root, 'sha256', key.slice(0, 2), key);
}

describeBlobStoreConformance('fs', ({ clock, name }) => {
  const root = tempRoot();
  const store = createFsBlobStore({ root, name, clock });
  return {
    store,
    async corrupt(key) {
      const path = dataPath(root, key);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
      await writeFile(path, bytes);
    },
    acceptedUris: (key) => [store.fileUri(key), pathToFileURL(dataPath(root, key)).href],
    refusedUris: (key) => [
      pathToFileURL(`${dataPath(root, key)}.json`).href,
      `${pathToFileURL(root).href}/sha256/${key.slice(0, 2)}/../../../etc/passwd`,
      `${pathToFileURL(root).href}/sha256/${key.slice(0, 2)}/%2e%2e/%2e%2e/${key}`,
      `${pathToFileURL(root).href}/sha256/${key.slice(0, 2)}%2F${key}`,
      `${pathToFileURL(dataPath(root, key)).href}?x=1`,
      `file://evil.example${dataPath(root, key)}`,
      pathToFileURL(join(root, 'tmp', key)).href,
    ],
    async teardown() {
      rmSync(root, { recursive: true, force: true });
    },
  };
});

describe('FsBlobStore', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it('shares blobs between two stores on the same root (two processes)', async () => {
    const root = tempRoot();
    roots.push(root);
    const a = createFsBlobStore({ root, name: 'shared' });
    const b = createFsBlobStore({ root, name: 'shared' });
    const bytes = randomBytes(70_000);
    const info = await a.put(bytes, { mediaType: 'image/png' });
    const key = b.resolve(info.uri);
    const object = await b.get(key);
    expect(object.info).toEqual(info);
    expect(Buffer.compare(await readAllBytes(object.body), bytes)).toBe(0);
  });

  it('leaves no temporary files behind and removes stale leftovers on cleanup', async () => {
    const root = tempRoot();
    roots.push(root);
    const clock = testClock(Date.now());
    const store = createFsBlobStore({ root, clock: clock.now, leftoverGraceMs: 60_000 });
    await store.put(randomBytes(1000), { mediaType: 'text/plain' });
    await store.put(randomBytes(1000), { mediaType: 'text/plain', expiresAt: clock.now() + 10 });
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);

    const leftover = join(root, 'tmp', 'interrupted.part');
    writeFileSync(leftover, 'half a blob');
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(leftover, old, old);
    const fresh = join(root, 'tmp', 'in-progress.part');
    writeFileSync(fresh, 'being written');
    clock.advance(20);
    expect(await store.cleanup()).toBe(1);
    expect(readdirSync(join(root, 'tmp'))).toEqual(['in-progress.part']);
  });

  it('counts a blob whose metadata is gone as missing', async () => {
    const root = tempRoot();
    roots.push(root);
    const store = createFsBlobStore({ root });
    const info = await store.put(randomBytes(100), { mediaType: 'text/plain' });
    rmSync(`${dataPath(root, info.key)}.json`);
    expect(await store.has(info.key)).toBe(false);
    await expect(store.get(info.key)).rejects.toMatchObject({ code: 'SB_CLAIM_CHECK_MISSING' });
  });
});
