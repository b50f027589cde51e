export * from './backoff.js';
export * from './broker.js';
export * from './contract.js';
export * from './diagnostics.js';
export * from './errors.js';
export * from './ids.js';
export * from './standard-schema.js';
export * from './trace.js';
