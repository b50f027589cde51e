import { implement } from '@switchboard/core';
import { createHttpService } from '@switchboard/http';
import { onShutdown, readConfig } from './config.js';
import { serviceA, serviceB, serviceC } from './contracts.js';
import { openDashboard, startRecorder } from './observe.js';
import { announceReady } from './processes.js';
import { openMessaging } from './wiring.js';

/**
 * ServiceC: a third service that ServiceA has never heard of. It reacts to A's payload-free
 * `name.processed` event in its own way; A's code does not change when C appears or goes. It also
 * reacts to `name.saved`, the event B's names table produces whenever a row of it changes, and
 * answers `seen` about what it saw of them.
 */
const config = readConfig(4003);
const recorder = startRecorder('service-c', config);
let processedNames = 0;

/** The last `name.saved` C reacted to, per row id. */
const savedNames = new Map<string, { messageId: string; source: string; saves: number }>();
const waiting = new Set<() => void>();

const { messaging, close } = await openMessaging('service-c', config);
messaging
  .on(serviceA, 'name.processed', () => {
    processedNames++;
    return { reacted: 'service-c', seen: processedNames };
  })
  .on(serviceB, 'name.saved', (row, ctx) => {
    const last = savedNames.get(row.id);
    if (last === undefined || row.saves >= last.saves)
      savedNames.set(row.id, { messageId: ctx.messageId, source: ctx.source, saves: row.saves });
    for (const wake of waiting) wake();
    return { reacted: 'service-c', name: row.name, saves: row.saves };
  });
await messaging.start();

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

// C's HTTP server: `seen`, health, receipts and its dashboard.
const dashboard = openDashboard(recorder, { deadLetters: messaging.deadLetters, receipts: messaging.receipts });
const http = createHttpService({ contract: serviceC, handlers, routes: [...messaging.routes(), dashboard.route] });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-c', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
  await close();
  await dashboard.close();
  recorder.close();
});
