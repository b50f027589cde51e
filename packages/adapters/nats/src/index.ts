export type { DroppedDelivery, DropReason } from '@switchboard/core/kit';
export type { NatsBroker } from './broker.js';
export { createNatsBroker } from './broker.js';
export type { ConnectionSource } from './connection.js';
export * from './core-broker.js';
export type { NatsBrokerOptions } from './options.js';
