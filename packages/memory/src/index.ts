export * from './blob-store.js';
export * from './broker.js';
export * from './dead-letter-store.js';
export * from './idempotency-store.js';
export * from './job-store.js';
export * from './receipt-store.js';
