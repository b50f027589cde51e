export * from './engines.js';
export * from './proxy.js';
export * from './report.js';
export * from './scenario.js';
export * from './workload.js';
