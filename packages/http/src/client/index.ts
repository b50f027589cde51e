export type { BreakerState, BreakerStateChange, CircuitBreakerOptions } from './breaker.js';
export { CircuitBreaker } from './breaker.js';
export type { Client } from './client.js';
export { createClient } from './client.js';
export { isDeclaredError } from './guards.js';
export type {
  CallContext,
  CallError,
  CallOptions,
  CallResult,
  ClientOptions,
  DeclaredError,
  RetryOptions,
} from './types.js';
