export * from './blob-store-conformance.js';
export * from './broker-conformance.js';
export * from './broker-helpers.js';
export * from './dead-letter-store-conformance.js';
export * from './job-store-conformance.js';
export * from './outbox-conformance.js';
export * from './receipt-store-conformance.js';
export * from './store-clock.js';
