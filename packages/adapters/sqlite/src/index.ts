export * from './broker.js';
export * from './database.js';
export * from './dead-letter-store.js';
export * from './idempotency-store.js';
export * from './job-store.js';
export * from './outbox.js';
export * from './receipt-store.js';
