import { createClient, createHttpService, createJobsClient } from '@switchboard/http';
import { onShutdown, readConfig, requireEnv } from './config.js';
import { serviceA, serviceB, serviceC } from './contracts.js';
import { serviceAHandlers } from './handlers-a.js';
import { openDashboard, startRecorder } from './observe.js';
import { announceReady } from './processes.js';
import { openMessaging } from './wiring.js';

/**
 * ServiceA: processes a request and needs ServiceB. Its handlers (`handlers-a.ts`) get B's and C's
 * clients and A's messaging; here they are wired to the configured URLs and broker.
 */
const config = readConfig(4001);
const recorder = startRecorder('service-a', config);
const serviceBUrl = requireEnv('SERVICE_B_URL');
const serviceCUrl = requireEnv('SERVICE_C_URL');
const b = createClient(serviceB, { baseUrl: serviceBUrl, timeoutMs: 10_000 });
const bJobs = createJobsClient(serviceB, { baseUrl: serviceBUrl });
const c = createClient(serviceC, { baseUrl: serviceCUrl, timeoutMs: 20_000 });
const service = 'service-a';
const { messaging, broker, close } = await openMessaging(service, config);
const handlers = serviceAHandlers({ b, bJobs, c, messaging, serviceBUrl, serviceCUrl });

// A's dashboard (/_switchboard/) shows its own flows joined with B's and C's, which it pulls from theirs.
const dashboard = openDashboard(recorder, {
  deadLetters: messaging.deadLetters,
  receipts: messaging.receipts,
  broker,
  peers: [serviceBUrl, serviceCUrl],
});
const http = createHttpService({ contract: serviceA, handlers, routes: [dashboard.route] });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-a', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
  await b.close();
  await bJobs.close();
  await c.close();
  await close();
  await dashboard.close();
  recorder.close();
});
