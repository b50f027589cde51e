import { auth } from './auth.js';
import { breaker } from './breaker.js';
import { classify } from './classify.js';
import { deadline } from './deadline.js';
import { retry } from './retry.js';
import { tracing } from './tracing.js';

export type { TokenProvider } from './auth.js';
export { AuthError } from './auth.js';
export type { AttemptObserver, AttemptResult, CallPolicy, RetryPlan, Verdict } from './policy.js';
export { CircuitOpenError, CutError } from './policy.js';
export { RetryPauseClosed } from './retry.js';
export type { CachedTokenOptions, CachedTokenProvider } from './token.js';
export { cachedToken, jwtExpiry } from './token.js';
export type { Transport, TransportOptions } from './transport.js';
export { createTransport } from './transport.js';

/**
 * The transport's interceptors, each in undici's `Dispatcher.compose` shape, for composing onto a
 * dispatcher of your own (`agent.compose(interceptors.tracing(), interceptors.deadline())`).
 * `createTransport` composes them all in the right order.
 */
export const interceptors = { auth, breaker, classify, deadline, retry, tracing } as const;
