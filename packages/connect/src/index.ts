export * from './broker.js';
export * from './engine-url.js';
