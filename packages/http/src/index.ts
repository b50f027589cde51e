export {};
export * from './client/index.js';
export * from './idempotency/index.js';
export * from './server/index.js';
