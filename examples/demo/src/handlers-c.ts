import type { Handlers } from '@switchboard/core';
import { implement } from '@switchboard/core';
import type { Messaging } from '@switchboard/messaging';
import { serviceA, serviceB, serviceC } from './contracts.js';

/** ServiceC's state, its event handlers and its `seen` operation. */
export interface ServiceC {
  /** Registers what C reacts to: A's `name.processed`, B's row changes (`name.saved`). */
  consumes(messaging: Messaging): void;
  readonly handlers: Handlers<typeof serviceC>;
}

/**
 * ServiceC: a third service that ServiceA has never heard of. It reacts to A's payload-free
 * `name.processed` event in its own way, and to `name.saved`, the event B's names table produces
 * whenever a row of it changes, and answers `seen` about what it saw of them.
 */
export function createServiceC(): ServiceC {
  let processedNames = 0;

  /** The last `name.saved` C reacted to, per row id. */
  const savedNames = new Map<string, { messageId: string; source: string; saves: number }>();
  const waiting = new Set<() => void>();

  const handlers = implement(serviceC, {
    seen: async ({ id, saves, waitMs }, ctx) => {
      const found = () => {
        const last = savedNames.get(id);
        return last !== undefined && last.saves >= saves ? last : undefined;
      };
      let last = found();
      if (last === undefined && waitMs > 0) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            ctx.signal.removeEventListener('abort', done);
            waiting.delete(check);
            resolve();
          };
          const check = () => {
            if (found() !== undefined) done();
          };
          const timer = setTimeout(done, waitMs);
          ctx.signal.addEventListener('abort', done);
          waiting.add(check);
        });
        last = found();
      }
      return last === undefined ? { seen: false } : { seen: true, ...last };
    },
  });

  return {
    handlers,
    consumes(messaging) {
      messaging
        .on(serviceA, 'name.processed', () => {
          processedNames++;
          return { reacted: 'service-c', seen: processedNames };
        })
        // C catalogues pictures from the event alone: the claim check lets it skip the bytes B reads.
        .on(serviceA, 'picture.uploaded', (data, ctx) => ({
          reacted: 'service-c',
          name: data.name,
          width: data.width,
          height: data.height,
          bytes: ctx.attachmentInfo?.size,
        }))
        .on(serviceB, 'name.saved', (row, ctx) => {
          const last = savedNames.get(row.id);
          if (last === undefined || row.saves >= last.saves)
            savedNames.set(row.id, { messageId: ctx.messageId, source: ctx.source, saves: row.saves });
          for (const wake of waiting) wake();
          return { reacted: 'service-c', name: row.name, saves: row.saves };
        });
    },
  };
}
