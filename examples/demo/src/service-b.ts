import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { apiDocumentRoutes, engineFromUrl } from '@switchboard/apidocs';
import { implement, OperationError } from '@switchboard/core';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { onShutdown, readConfig } from './config.js';
import { serviceA, serviceB } from './contracts.js';
import { openNames } from './names.js';
import { openDashboard, startRecorder } from './observe.js';
import { pngSize } from './picture.js';
import { announceReady } from './processes.js';
import { openMessaging } from './wiring.js';

/**
 * ServiceB: owns saving and analysing names. Its handlers are written once; the same object is
 * served over HTTP (sync and as jobs) and through the broker. It also reacts to ServiceA's events.
 * Saving writes a row of its names table, and that is all: each committed change of the table
 * becomes the `name.saved` event its contract declares (`changes(...)`), with no emit in B's code.
 */
const config = readConfig(4002);
const recorder = startRecorder('service-b', config);
// Three attempts, close together, before a message goes to the dead letters (the default is five, backing off).
const { messaging, broker, deadLetters, close } = await openMessaging('service-b', config, {
  retry: { maxAttempts: 3, backoff: { baseMs: 200, maxMs: 1000 } },
});
const names = await openNames({ config, broker, deadLetters }).catch(async (error: unknown) => {
  console.error(`service-b: ${error instanceof Error ? error.message : String(error)}`);
  await close();
  process.exit(1);
});

/**
 * A dependency that is down for a while, for the dead-letter view: a name with `(flaky)` in it,
 * arriving as a message, fails its first three deliveries (a transient error: retried, then
 * dead-lettered) and succeeds from the fourth on, which is the replay.
 */
const flaky = new Map<string, number>();
const FLAKY_FAILURES = 3;

export const handlers = implement(serviceB, {
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
    return { saved: true, id, saves };
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
    };
  },
});

messaging
  // Operations can also arrive through the broker: the very same handlers run.
  .serve(serviceB, handlers)
  // A payload-free event: B knows only that it happened, and does its own work.
  .on(serviceA, 'name.processed', (_data, ctx) => ({ reacted: 'service-b', at: ctx.time }))
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
await messaging.start();

// Asynchronous HTTP: `analyze` runs as a durable job (SQLite store) when the caller asks for it
// with `Prefer: respond-async`; `save` stays a plain synchronous call.
const jobStore = createSqliteJobStore({ path: join(config.dataDir, 'service-b-jobs.db') });
const jobOperations = { save: false, analyze: { concurrency: 4 } };
const jobs = enableJobs(serviceB, { store: jobStore, operations: jobOperations });

// B serves its own API documents: GET /openapi.json and GET /asyncapi.json.
const documents = apiDocumentRoutes(serviceB, {
  openapi: { jobs: { operations: jobOperations }, receipts: true, events: { accepts: [serviceA] } },
  asyncapi: {
    contracts: [serviceB, serviceA],
    engines: [engineFromUrl(config.broker)],
    services: [{ name: 'service-b', serves: [serviceB], subscribes: [serviceA] }],
  },
});

const dashboard = openDashboard(recorder, { deadLetters: messaging.deadLetters, receipts: messaging.receipts });
const http = createHttpService({
  contract: serviceB,
  handlers,
  routes: [...messaging.routes(), ...jobs.routes, ...documents, dashboard.route],
  interceptors: jobs.interceptors,
});
jobs.start(http);
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-b', url);
onShutdown(async () => {
  await jobs.close({ timeoutMs: 5000 });
  await http.close({ timeoutMs: 5000 });
  await jobStore.close();
  await names.close();
  await close();
  await dashboard.close();
  recorder.close();
});
