export * from './auth/index.js';
export * from './client/index.js';
export * from './idempotency/index.js';
export * from './jobs/index.js';
export * from './server/index.js';
export * from './transport/index.js';
export * from './webhooks/index.js';
