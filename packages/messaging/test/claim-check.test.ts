import { createHash, randomBytes } from 'node:crypto';
import { createCloudEvent, encodeBinary, formatDataHash } from '@switchboard/core';
import { blobUri, readAllBytes } from '@switchboard/core/kit';
import { eventsTopic } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { type Engine, engines, serviceA, serviceB } from './harness.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function publishPictureEvent(engine: Engine, extensions: Record<string, string | number>): Promise<string> {
  const event = createCloudEvent({ type: 'service-a.picture.processed', source: 'service-a', extensions });
  await engine.broker.publish({ id: event.id, topic: eventsTopic(serviceA), ...encodeBinary(event, engine.broker.binding) });
  return event.id;
}

describe.each(engines)('claim check on %s', (_name, factory) => {
  it('sends a few-MB attachment by reference; the consumer streams it, verified against the hash', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a' });
      const b = engine.messaging({ service: 'service-b' });
      const picture = randomBytes(3 * 1024 * 1024 + 17);
      const received: { hash: string; info: unknown; bodyBytes: number }[] = [];
      b.on(serviceA, 'picture.processed', async (_data, ctx) => {
        const bytes = await readAllBytes(ctx.attachment());
        received.push({ hash: sha256(bytes), info: ctx.attachmentInfo, bodyBytes: ctx.event.data === undefined ? 0 : 1 });
      });
      await b.start();
      const { messageId } = await a.emit(serviceA, 'picture.processed', undefined, { attachment: picture, attachmentType: 'image/png' });
      expect((await b.receipts.wait(messageId))?.groups[0]?.state).toBe('processed');
      expect(received).toEqual([
        {
          hash: sha256(picture),
          info: { uri: blobUri('test-blobs', sha256(picture)), sha256: sha256(picture), size: picture.length, mediaType: 'image/png' },
          bodyBytes: 0,
        },
      ]);
    } finally {
      await engine.close();
    }
  });

  it('claim-checks data over the threshold automatically; the handler gets it inline', async () => {
    const engine = factory();
    try {
      const a = engine.messaging({ service: 'service-a', claimCheck: { thresholdBytes: 1024 } });
      const b = engine.messaging({ service: 'service-b' });
      const byReference = new Map<string, boolean>();
      b.handle(serviceB, 'name.submitted', (data, ctx) => {
        byReference.set(
          data.name,
          ctx.event.data === undefined && String(ctx.event.extensions?.dataref).startsWith('blob://test-blobs/sha256/'),
        );
      });
      await b.start();
      const big = 'x'.repeat(5000);
      const sent = await a.send(serviceB, 'name.submitted', { name: big });
      const small = await a.send(serviceB, 'name.submitted', { name: 'small' });
      expect((await b.receipts.wait(sent.messageId))?.groups[0]?.state).toBe('processed');
      expect((await b.receipts.wait(small.messageId))?.groups[0]?.state).toBe('processed');
      expect(byReference).toEqual(
        new Map([
          [big, true],
          ['small', false],
        ]),
      );
      const payload = Buffer.from(JSON.stringify({ name: big }));
      expect(await engine.blobs.has(sha256(payload))).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it('dead-letters a missing blob, a wrong hash and a foreign dataref with a clear reason', async () => {
    const engine = factory();
    try {
      const b = engine.messaging({ service: 'service-b' });
      let reads = 0;
      b.on(serviceA, 'picture.processed', async (_data, ctx) => {
        reads++;
        await readAllBytes(ctx.attachment());
      });
      await b.start();
      const absent = sha256(Buffer.from('never stored'));
      const missing = await publishPictureEvent(engine, {
        dataref: blobUri('test-blobs', absent),
        datahash: formatDataHash(absent),
        datamediatype: 'image/png',
      });
      const stored = await engine.blobs.put(Buffer.from('the real bytes'), { mediaType: 'image/png' });
      const wrong = await publishPictureEvent(engine, {
        dataref: stored.uri,
        datahash: formatDataHash(sha256(Buffer.from('other bytes'))),
        datamediatype: 'image/png',
      });
      const foreign = await publishPictureEvent(engine, {
        dataref: 'https://attacker.example/steal',
        datahash: formatDataHash(stored.sha256),
        datamediatype: 'image/png',
      });
      const outcome = async (id: string) => (await b.receipts.wait(id))?.groups[0];
      expect(await outcome(missing)).toMatchObject({ state: 'dead-lettered', attempts: 1, error: { code: 'SB_CLAIM_CHECK_MISSING' } });
      expect(await outcome(wrong)).toMatchObject({ state: 'dead-lettered', attempts: 1, error: { code: 'SB_CLAIM_CHECK_HASH_MISMATCH' } });
      expect(await outcome(foreign)).toMatchObject({ state: 'dead-lettered', attempts: 1, error: { code: 'SB_DATAREF_REFUSED' } });
      const reasons = (await b.deadLetters.list()).items.map((e) => e.reason);
      expect(reasons).toEqual(['claim-check', 'claim-check', 'claim-check']);
      expect(reads).toBe(1);
    } finally {
      await engine.close();
    }
  });
});
