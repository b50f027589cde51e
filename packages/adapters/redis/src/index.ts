export * from './broker.js';
export * from './job-store.js';
