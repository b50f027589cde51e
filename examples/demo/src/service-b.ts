import { join } from 'node:path';
import { apiDocumentRoutes, engineFromUrl } from '@switchboard/apidocs';
import { createHttpService, enableJobs } from '@switchboard/http';
import { createSqliteJobStore } from '@switchboard/sqlite';
import { onShutdown, readConfig } from './config.js';
import { serviceA, serviceB } from './contracts.js';
import { serviceBConsumes, serviceBHandlers } from './handlers-b.js';
import { openNames } from './names.js';
import { openDashboard, startRecorder } from './observe.js';
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

const handlers = serviceBHandlers(names);
// Operations can also arrive through the broker: the very same handlers run.
messaging.serve(serviceB, handlers);
serviceBConsumes(messaging);
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

const dashboard = openDashboard(recorder, { deadLetters: messaging.deadLetters, receipts: messaging.receipts, jobs, broker });
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
