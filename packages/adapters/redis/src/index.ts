export type { DroppedDelivery, DropReason } from '@switchboard/core/kit';
export * from './broker.js';
export * from './dead-letter-store.js';
export * from './idempotency-store.js';
export * from './job-store.js';
export * from './pubsub-broker.js';
export * from './receipt-store.js';
