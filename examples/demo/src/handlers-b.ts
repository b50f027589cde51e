import { createHash } from 'node:crypto';
import type { Handlers } from '@switchboard/core';
import { implement, OperationError, parseTraceparent } from '@switchboard/core';
import type { Messaging } from '@switchboard/messaging';
import { serviceA, serviceB } from './contracts.js';
import type { Names } from './names.js';
import { pngSize } from './picture.js';

/**
 * ServiceB's handlers, written once: the same object is served over HTTP (sync and as jobs) and
 * through the broker. Saving writes a row of its names table, and that is all.
 */
export function serviceBHandlers(names: Pick<Names, 'save'>): Handlers<typeof serviceB> {
  /**
   * A dependency that is down for a while, for the dashboard's dead-letter view: a name with
   * `(flaky)` in it, arriving as a message, fails its first three deliveries (a transient error:
   * retried, then dead-lettered) and succeeds from the fourth on, which is the replay.
   */
  const flaky = new Map<string, number>();
  const FLAKY_FAILURES = 3;
  return implement(serviceB, {
    save: async ({ name }, ctx) => {
      if (/^\d+$/.test(name)) throw new OperationError('NameRejected', { detail: 'a name needs letters', data: { reason: 'digits only' } });
      if (ctx.via === 'message' && name.includes('(flaky)')) {
        const failures = flaky.get(name) ?? 0;
        if (failures < FLAKY_FAILURES) {
          flaky.set(name, failures + 1);
          throw new Error(`the names table is locked (failure ${failures + 1} of ${FLAKY_FAILURES} for a flaky name)`);
        }
      }
      const { id, saves } = await names.save(name);
      return { saved: true, id, saves, traceId: traceIdOf(ctx.traceparent) };
    },
    analyze: async ({ name, workMs }, ctx) => {
      const steps = 10;
      for (let step = 1; step <= steps; step++) {
        await new Promise((resolve) => setTimeout(resolve, workMs / steps));
        ctx.signal.throwIfAborted();
        ctx.progress({ percent: step * 10, message: `step ${step} of ${steps}` });
      }
      const letters = name.replace(/[^\p{L}]/gu, '').toLowerCase();
      return {
        name,
        letters: letters.length,
        vowels: (letters.match(/[aeiouy]/g) ?? []).length,
        palindrome: letters.length > 0 && letters === [...letters].reverse().join(''),
        traceId: traceIdOf(ctx.traceparent),
      };
    },
  });
}

/** What ServiceB consumes besides its operations: A's events. */
export function serviceBConsumes(messaging: Messaging): void {
  messaging
    // A payload-free event: B knows only that it happened, and does its own work.
    .on(serviceA, 'name.processed', (_data, ctx) => ({ reacted: 'service-b', at: ctx.time, traceId: traceIdOf(ctx.traceparent) }))
    // A picture by claim check: the event carries a reference; the bytes come from the blob store,
    // verified against the hash on the event while they are read.
    .on(serviceA, 'picture.uploaded', async (data, ctx) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.attachment()) {
        hash.update(chunk as Buffer);
        if (chunks.length === 0) chunks.push(chunk as Buffer);
      }
      const size = pngSize(chunks[0] ?? Buffer.alloc(0));
      return {
        sha256: hash.digest('hex'),
        bytes: ctx.attachmentInfo?.size,
        png: size !== undefined && size.width === data.width && size.height === data.height,
      };
    });
}

/** The trace id of a W3C `traceparent` ('' when there is none). */
function traceIdOf(traceparent: string | undefined): string {
  return parseTraceparent(traceparent)?.traceId ?? '';
}
