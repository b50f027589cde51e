import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobInfo, Broker, OutgoingMessage } from '@switchboard/core';
import { blobCreated, decodeCloudEvent, defineContract, event, formatDataHash, isSwitchboardError } from '@switchboard/core';
import { readAllBytes } from '@switchboard/core/kit';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { type AttachmentInfo, createFsBlobStore, createMessaging, withUploadEvents } from '@switchboard/messaging';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';

const gallery = defineContract({
  name: 'gallery',
  events: { 'blob.created': blobCreated(), 'picture.tagged': event() },
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-uploads-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A broker that records what is published on it. */
function recording(inner: Broker) {
  const published: OutgoingMessage[] = [];
  const broker: Broker = {
    name: inner.name,
    binding: inner.binding,
    capabilities: inner.capabilities,
    publish: async (message) => {
      await inner.publish(message);
      published.push(message);
    },
    publishBatch: async (messages) => {
      await inner.publishBatch(messages);
      published.push(...messages);
    },
    declareGroup: (topic, group) => inner.declareGroup(topic, group),
    subscribe: (options, handler) => inner.subscribe(options, handler),
    close: () => inner.close(),
  };
  return { broker, published };
}

describe('upload events: a put into the blob store announces "a file was uploaded"', () => {
  it('end to end on the memory broker: two services react, the bytes come by claim check, verified against the hash', async () => {
    const root = tempDir();
    const { broker, published } = recording(createMemoryBroker());
    const uploader = createMessaging({ broker, service: 'gallery', deadLetters: false });
    const uploads = withUploadEvents(createFsBlobStore({ root, name: 'pictures' }), { messaging: uploader, contract: gallery });

    const seen: { service: string; data: BlobInfo; info: AttachmentInfo | undefined; subject: string | undefined; sha: string }[] = [];
    const services = ['thumbnails', 'moderation'].map((service) => {
      const messaging = createMessaging({
        broker,
        service,
        deadLetters: createMemoryDeadLetterStore(),
        receipts: createMemoryReceiptStore(),
        // Another process reading the same folder: its own store object on the same root.
        blobs: createFsBlobStore({ root, name: 'pictures' }),
      });
      messaging.on(gallery, 'blob.created', async (data, context) => {
        expectTypeOf(data).toEqualTypeOf<BlobInfo>();
        const bytes = await readAllBytes(context.attachment());
        seen.push({ service, data, info: context.attachmentInfo, subject: context.subject, sha: sha256(bytes) });
      });
      return messaging;
    });
    await Promise.all(services.map((s) => s.start()));

    const picture = randomBytes(512 * 1024 + 3);
    const uploaded = await uploads.put(picture, { mediaType: 'image/png', subject: 'users/42/avatar' });
    expect(uploaded).toMatchObject({
      sha256: sha256(picture),
      size: picture.length,
      mediaType: 'image/png',
      uri: `blob://pictures/sha256/${sha256(picture)}`,
    });
    for (const s of services) expect((await s.receipts.wait(uploaded.messageId))?.groups[0]?.state).toBe('processed');

    const { messageId, ...info } = uploaded;
    expect(seen.map((s) => s.service).sort()).toEqual(['moderation', 'thumbnails']);
    for (const s of seen) {
      expect(s.data).toEqual(info);
      expect(s.sha).toBe(sha256(picture));
      expect(s.subject).toBe('users/42/avatar');
      expect(s.info).toEqual({ uri: info.uri, sha256: info.sha256, size: info.size, mediaType: 'image/png' });
    }
    // On the wire: one CloudEvent with the claim-check extensions and the BlobInfo as data; the bytes went to the store only.
    expect(published).toHaveLength(1);
    const wire = decodeCloudEvent(published[0]?.headers ?? {}, published[0]?.body ?? new Uint8Array(), broker.binding);
    expect(wire).toMatchObject({ id: messageId, type: 'gallery.blob.created', source: 'gallery', subject: 'users/42/avatar', data: info });
    expect(wire.extensions).toMatchObject({
      dataref: info.uri,
      datahash: formatDataHash(sha256(picture)),
      datasize: picture.length,
      datamediatype: 'image/png',
    });
    expect(published[0]?.body.byteLength).toBeLessThan(1024);
    await Promise.all(services.map((s) => s.close()));
  });

  it('streams: a put from a stream is announced once complete', async () => {
    const root = tempDir();
    const broker = createMemoryBroker();
    const uploader = createMessaging({ broker, service: 'gallery', deadLetters: false });
    const uploads = withUploadEvents(createFsBlobStore({ root }), { messaging: uploader, contract: gallery, event: 'blob.created' });
    const receiver = createMessaging({
      broker,
      service: 'archive',
      deadLetters: false,
      receipts: createMemoryReceiptStore(),
      blobs: createFsBlobStore({ root }),
    });
    const sizes: number[] = [];
    receiver.on(gallery, 'blob.created', async (_data, context) => {
      sizes.push((await readAllBytes(context.attachment())).length);
    });
    await receiver.start();
    const chunks = Array.from({ length: 16 }, () => randomBytes(64 * 1024));
    const uploaded = await uploads.put(Readable.from(chunks), { mediaType: 'application/octet-stream' });
    expect((await receiver.receipts.wait(uploaded.messageId))?.groups[0]?.state).toBe('processed');
    expect(sizes).toEqual([16 * 64 * 1024]);
    // Each put is its own upload, even of identical bytes: stored once, announced twice.
    const again = await uploads.put(Buffer.concat(chunks), { mediaType: 'application/octet-stream' });
    expect(again.key).toBe(uploaded.key);
    expect(again.messageId).not.toBe(uploaded.messageId);
    await receiver.receipts.wait(again.messageId);
    expect(sizes).toEqual([16 * 64 * 1024, 16 * 64 * 1024]);
    await receiver.close();
  });

  it('a failed emit fails the put; the blob stays stored and a retry announces it', async () => {
    const root = tempDir();
    const inner = createMemoryBroker();
    let down = true;
    const broker: Broker = {
      ...recording(inner).broker,
      publish: async (message) => {
        if (down) throw new Error('broker down');
        await inner.publish(message);
      },
    };
    const store = createFsBlobStore({ root });
    const uploads = withUploadEvents(store, {
      messaging: createMessaging({ broker, service: 'gallery', deadLetters: false }),
      contract: gallery,
    });
    const bytes = randomBytes(1000);
    await expect(uploads.put(bytes, { mediaType: 'image/jpeg' })).rejects.toThrow('broker down');
    expect(await store.has(sha256(bytes))).toBe(true);
    down = false;
    expect((await uploads.put(bytes, { mediaType: 'image/jpeg' })).messageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses an event that does not carry the blob: unknown, or not declared with blobCreated()', () => {
    const messaging = createMessaging({ broker: createMemoryBroker(), service: 'gallery', deadLetters: false });
    const store = createFsBlobStore({ root: tempDir() });
    const refused = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return isSwitchboardError(error, 'SB_CONFIG_INVALID') ? error.detail : 'other error';
      }
      return 'accepted';
    };
    expect(refused(() => withUploadEvents(store, { messaging, contract: defineContract({ name: 'plain' }) }))).toBe(
      'contract plain has no event blob.created: declare it with blobCreated()',
    );
    expect(refused(() => withUploadEvents(store, { messaging, contract: gallery, event: 'picture.tagged' }))).toContain(
      'declare it with blobCreated()',
    );
  });

  it('attachmentBlob: only on events that declare an attachment, and not together with attachment', async () => {
    const root = tempDir();
    const store = createFsBlobStore({ root });
    const messaging = createMessaging({ broker: createMemoryBroker(), service: 'gallery', deadLetters: false, blobs: store });
    const info = await store.put(randomBytes(10), { mediaType: 'image/png' });
    await expect(messaging.emit(gallery, 'picture.tagged', undefined, { attachmentBlob: info })).rejects.toMatchObject({
      code: 'SB_VALIDATION',
    });
    await expect(
      messaging.emit(gallery, 'blob.created', info, { attachmentBlob: info, attachment: randomBytes(10) }),
    ).rejects.toMatchObject({
      code: 'SB_CONFIG_INVALID',
    });
    await expect(messaging.emit(gallery, 'blob.created', { ...info, size: -1 })).rejects.toMatchObject({ code: 'SB_VALIDATION' });
  });
});
