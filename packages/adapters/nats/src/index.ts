export type { NatsBroker } from './broker.js';
export { createNatsBroker } from './broker.js';
export type { NatsBrokerOptions } from './options.js';
