import { defineContract } from '@switchboard/core';
import { createHttpService } from '@switchboard/http';
import { onShutdown, readConfig } from './config.js';
import { serviceA } from './contracts.js';
import { announceReady } from './processes.js';
import { openMessaging } from './wiring.js';

/**
 * ServiceC: a third service that ServiceA has never heard of. It reacts to A's payload-free
 * `name.processed` event in its own way; A's code does not change when C appears or goes.
 */
const config = readConfig(4003);
let processedNames = 0;

const { messaging, close } = await openMessaging('service-c', config);
messaging.on(serviceA, 'name.processed', () => {
  processedNames++;
  return { reacted: 'service-c', seen: processedNames };
});
await messaging.start();

// C serves no operations; its HTTP server is there for health and for receipts.
const http = createHttpService({ contract: defineContract({ name: 'service-c' }), handlers: {}, routes: messaging.routes() });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-c', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
  await close();
});
