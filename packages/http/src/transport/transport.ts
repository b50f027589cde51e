import { SwitchboardError } from '@switchboard/core';
import type { Dispatcher } from 'undici';
import { Agent, Pool } from 'undici';
import type { CircuitBreaker } from '../client/breaker.js';
import type { TokenProvider } from './auth.js';
import { auth } from './auth.js';
import { breaker } from './breaker.js';
import { classify } from './classify.js';
import { deadline } from './deadline.js';
import { retry } from './retry.js';
import { tracing } from './tracing.js';

export interface TransportOptions {
  /** One upstream: a keep-alive `Pool` for it. Without it (and without `dispatcher`), an `Agent` for any origin. */
  readonly origin?: string;
  /** Send through this dispatcher instead (not closed by the transport). */
  readonly dispatcher?: Dispatcher;
  /** Sockets of the pool or agent. */
  readonly connections?: number;
  readonly pipelining?: number;
  readonly keepAliveTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Bearer token for every attempt. */
  readonly auth?: TokenProvider;
  /** Circuit breaker of the upstream, consulted per attempt. */
  readonly breaker?: CircuitBreaker;
}

/** The one HTTP transport of the sync, jobs and receipts clients. */
export interface Transport {
  /** The composed dispatcher: send with `dispatcher.request({ ..., switchboard: policy })`. */
  readonly dispatcher: Dispatcher;
  close(): Promise<void>;
}

function positive(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Client option ${name} must be a positive number` });
  }
  return value;
}

/**
 * Builds the transport: undici's dispatcher composed (`Dispatcher.compose`) with Switchboard's
 * interceptors, outermost first: retry → circuit breaker → classify → deadline → auth → tracing →
 * the network. Each concern is one interceptor of undici's shape (`dispatch => (opts, handler) =>
 * …`), acting on the request's `switchboard` dispatch option (`CallPolicy`); so a retry is a fresh
 * dispatch with its own breaker ticket, deadline, token and span.
 */
export function createTransport(options: TransportOptions): Transport {
  let base: Dispatcher;
  let owns = false;
  if (options.dispatcher !== undefined) {
    base = options.dispatcher;
  } else {
    const settings = {
      connections: positive('connections', options.connections) ?? 128,
      pipelining: options.pipelining ?? 1,
      keepAliveTimeout: positive('keepAliveTimeoutMs', options.keepAliveTimeoutMs) ?? 4_000,
      connect: { timeout: positive('connectTimeoutMs', options.connectTimeoutMs) ?? 5_000 },
    };
    base = options.origin === undefined ? new Agent(settings) : new Pool(options.origin, settings);
    owns = true;
  }
  const interceptors: Dispatcher.DispatcherComposeInterceptor[] = [tracing()];
  if (options.auth !== undefined) interceptors.push(auth(options.auth));
  interceptors.push(deadline(), classify({ breaker: options.breaker !== undefined }));
  if (options.breaker !== undefined) interceptors.push(breaker(options.breaker));
  interceptors.push(retry());
  const dispatcher = base.compose(interceptors);
  let closed: Promise<void> | undefined;
  return {
    dispatcher,
    close() {
      closed ??= owns ? base.close() : Promise.resolve();
      return closed;
    },
  };
}
