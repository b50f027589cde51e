import { createHttpService } from '@switchboard/http';
import { onShutdown, readConfig } from './config.js';
import { serviceC } from './contracts.js';
import { createServiceC } from './handlers-c.js';
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
const serviceCParts = createServiceC();
const { messaging, broker, close } = await openMessaging('service-c', config);
serviceCParts.consumes(messaging);
await messaging.start();
const handlers = serviceCParts.handlers;

// C's HTTP server: `seen`, health, receipts and its dashboard.
const dashboard = openDashboard(recorder, { deadLetters: messaging.deadLetters, receipts: messaging.receipts, broker });
const http = createHttpService({ contract: serviceC, handlers, routes: [...messaging.routes(), dashboard.route] });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-c', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
  await close();
  await dashboard.close();
  recorder.close();
});
