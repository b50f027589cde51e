import type {
  AnyContract,
  AttemptMessage,
  CallInput,
  CallMessage,
  CallOutput,
  ManualTrace,
  OperationDefinition,
  OperationErrorCode,
  OperationName,
} from '@switchboard/core';
import { newMessageId, SwitchboardError, traceAsync, traceManual, tracing } from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import type { Dispatcher } from 'undici';
import { AuthError } from '../transport/auth.js';
import type { AttemptResult, CallPolicy, Verdict } from '../transport/policy.js';
import { CircuitOpenError, CutError } from '../transport/policy.js';
import { RetryPauseClosed } from '../transport/retry.js';
import type { Transport } from '../transport/transport.js';
import { createTransport } from '../transport/transport.js';
import type { BreakerState } from './breaker.js';
import { CircuitBreaker } from './breaker.js';
import type { Cut, Failure } from './failure.js';
import { failure, transportFailure } from './failure.js';
import { isDeclaredError } from './guards.js';
import type { Success } from './response.js';
import { decodeResponse, judgeResponse } from './response.js';
import type { RetryPolicy } from './retry.js';
import { retryDelay, retryPolicy } from './retry.js';
import type { Trace } from './trace.js';
import { callerTrace } from './trace.js';
import type { CallError, CallOptions, CallResult, ClientOptions, DeclaredError } from './types.js';

/** A typed client of one service, built from its contract. */
export interface Client<C extends AnyContract> {
  readonly contract: C;
  /** The upstream's circuit breaker, unless disabled. */
  readonly breaker: CircuitBreaker | undefined;
  /**
   * Calls an operation. Resolves with its output; rejects with one of its declared errors
   * (`OperationError`) or a `SwitchboardError`.
   */
  call<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: CallOptions): Promise<CallOutput<C, K>>;
  /** Calls an operation without throwing: `{ ok: true, value }` or `{ ok: false, error }`. */
  result<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: CallOptions): Promise<CallResult<C, K>>;
  /** Narrows `error` to a declared error of `operation` (to the one named `code`, when given). */
  isError<K extends OperationName<C>, E extends OperationErrorCode<C, K> = OperationErrorCode<C, K>>(
    error: unknown,
    operation: K,
    code?: E,
  ): error is DeclaredError<C, K, E>;
  /** State of the upstream's circuit breaker (`closed` when there is none). */
  breakerState(): BreakerState;
  /** Stops accepting calls, wakes calls waiting to retry, and closes the pool the client created. */
  close(): Promise<void>;
}

interface Plan {
  readonly name: string;
  readonly path: string;
  readonly url: string;
  readonly definition: OperationDefinition;
}

/** What stays the same across the attempts of one call. */
interface CallState {
  readonly plan: Plan;
  readonly body: string;
  readonly key: string | undefined;
  /** Repeating the request cannot repeat its effect (idempotent operation or Idempotency-Key). */
  readonly safe: boolean;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  /** The caller's trace, continued by every attempt with a new span id, or a new one. */
  readonly trace: Trace;
  readonly headers: Readonly<Record<string, string>> | undefined;
}

const NO_OPTIONS: CallOptions = {};

/** A bug surfaced as a typed error, so that `result()` never rejects. */
function unexpected(operation: string, cause: unknown): Failure {
  return failure(new SwitchboardError('SB_INTERNAL', { detail: `Call of ${operation} failed unexpectedly`, cause }), false, 'unknown');
}

function lowerCaseKeys(headers: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
  if (headers === undefined) return undefined;
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) result[name.toLowerCase()] = value;
  return result;
}

function positiveOption(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Client option ${name} must be a positive number` });
  }
  return value;
}

class HttpClient<C extends AnyContract> implements Client<C> {
  readonly contract: C;
  readonly breaker: CircuitBreaker | undefined;
  readonly #origin: string;
  readonly #plans = new Map<string, Plan>();
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #attemptTimeoutMs: number | undefined;
  readonly #retry: RetryPolicy;
  readonly #validateInput: boolean;
  readonly #validateOutput: boolean;
  readonly #headers: Readonly<Record<string, string>> | undefined;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(contract: C, options: ClientOptions) {
    this.contract = contract;
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch (cause) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `baseUrl ${String(options.baseUrl)} is not a URL`, cause });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `baseUrl must be http: or https:, not ${base.protocol}` });
    }
    this.#origin = base.origin;
    const prefix = base.pathname.replace(/\/+$/, '');
    for (const [name, definition] of Object.entries(contract.operations)) {
      const path = `${prefix}/ops/${encodeURIComponent(name)}`;
      this.#plans.set(name, { name, path, url: `${this.#origin}${path}`, definition });
    }
    this.#timeoutMs = positiveOption('timeoutMs', options.timeoutMs) ?? 30_000;
    this.#attemptTimeoutMs = positiveOption('attemptTimeoutMs', options.attemptTimeoutMs);
    this.#retry = retryPolicy(options.retry);
    this.#validateInput = options.validateInput ?? true;
    this.#validateOutput = options.validateOutput ?? false;
    this.#headers = lowerCaseKeys(options.headers);
    const breaker = options.breaker;
    this.breaker = breaker === false ? undefined : breaker instanceof CircuitBreaker ? breaker : new CircuitBreaker(breaker);
    this.#transport = createTransport({
      origin: this.#origin,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      ...(options.connections === undefined ? {} : { connections: options.connections }),
      ...(options.pipelining === undefined ? {} : { pipelining: options.pipelining }),
      ...(options.keepAliveTimeoutMs === undefined ? {} : { keepAliveTimeoutMs: options.keepAliveTimeoutMs }),
      ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      ...(this.breaker === undefined ? {} : { breaker: this.breaker }),
    });
  }

  async call<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: CallOptions): Promise<CallOutput<C, K>> {
    const outcome = await this.#attempts(operation, input, options ?? NO_OPTIONS).catch((cause: unknown) => unexpected(operation, cause));
    if (outcome.ok) return outcome.value as CallOutput<C, K>;
    throw outcome.error;
  }

  async result<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: CallOptions): Promise<CallResult<C, K>> {
    const outcome = await this.#attempts(operation, input, options ?? NO_OPTIONS).catch((cause: unknown) => unexpected(operation, cause));
    if (outcome.ok) return { ok: true, value: outcome.value as CallOutput<C, K> };
    return { ok: false, error: outcome.error as CallError<C, K> };
  }

  isError<K extends OperationName<C>, E extends OperationErrorCode<C, K> = OperationErrorCode<C, K>>(
    error: unknown,
    operation: K,
    code?: E,
  ): error is DeclaredError<C, K, E> {
    return isDeclaredError(error, this.contract, operation, code);
  }

  breakerState(): BreakerState {
    return this.breaker?.state ?? 'closed';
  }

  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closing.abort();
      this.#closed = this.#transport.close();
    }
    return this.#closed;
  }

  async #attempts(name: string, input: unknown, options: CallOptions): Promise<Success | Failure> {
    const plan = this.#plans.get(name);
    if (plan === undefined) {
      const detail = `Contract ${this.contract.name} has no operation ${name}`;
      return failure(new SwitchboardError('SB_UNKNOWN_OPERATION', { detail }), false, 'unknown');
    }
    if (this.#closed !== undefined) return failure(new SwitchboardError('SB_CLOSED', { detail: 'The client is closed' }), false, 'unknown');
    if (this.#validateInput) {
      const pending = validate(plan.definition.input, input);
      const checked = pending instanceof Promise ? await pending : pending;
      if (!checked.ok) {
        const detail = `Input of operation ${name} does not match its schema`;
        return failure(new SwitchboardError('SB_VALIDATION', { detail, errors: checked.errors }), false, 'unknown');
      }
    }
    let body: string;
    try {
      body = JSON.stringify(input) ?? 'null';
    } catch (cause) {
      const detail = `Input of operation ${name} cannot be serialised to JSON`;
      return failure(new SwitchboardError('SB_VALIDATION', { detail, cause }), false, 'unknown');
    }

    const context = options.context;
    const signal = options.signal ?? context?.signal;
    const explicitDeadline = options.deadline ?? context?.deadline;
    let deadline = Date.now() + (options.timeoutMs ?? this.#timeoutMs);
    if (explicitDeadline !== undefined && explicitDeadline < deadline) deadline = explicitDeadline;
    const policy = options.retry === undefined ? this.#retry : retryPolicy(options.retry);
    let key = options.idempotencyKey;
    if (key === undefined && !plan.definition.idempotent && policy.attempts > 1 && policy.idempotencyKeys) key = newMessageId();
    const call: CallState = {
      plan,
      body,
      key,
      safe: plan.definition.idempotent || key !== undefined,
      deadline,
      signal,
      // The traceparent and tracestate come as a pair: explicit options win over the context.
      // Without either, the ambient trace: the handler this call is made from.
      trace: callerTrace(options.traceparent, options.tracestate, context),
      headers: lowerCaseKeys(options.headers),
    };

    if (signal?.aborted) {
      return failure(new SwitchboardError('SB_ABORTED', { detail: `POST ${plan.url}`, cause: signal.reason }), false, 'unknown');
    }
    const headers: Record<string, string> =
      this.#headers === undefined && call.headers === undefined ? {} : { ...this.#headers, ...call.headers };
    headers['content-type'] = 'application/json';
    headers.accept = 'application/json';
    if (key !== undefined) headers['idempotency-key'] = key;
    const observed = tracing.call.hasSubscribers || tracing.attempt.hasSubscribers;
    const message: CallMessage | undefined = observed
      ? {
          service: this.contract.name,
          operation: plan.name,
          method: 'POST',
          url: plan.url,
          parentTraceparent: call.trace.continued ? (options.traceparent ?? context?.traceparent) : undefined,
          idempotencyKey: key,
          attempts: 0,
        }
      : undefined;
    const callPolicy: CallPolicy = {
      trace: call.trace,
      deadline,
      attemptTimeoutMs: this.#attemptTimeoutMs,
      budgetHeader: true,
      retry:
        call.safe && policy.attempts > 1
          ? {
              attempts: policy.attempts,
              delay: (attempt, retryAfterMs) => retryDelay(policy, attempt, retryAfterMs),
              closing: this.#closing.signal,
            }
          : undefined,
      classify: (result) => classifyAttempt(result, plan.definition),
      observe: message === undefined ? undefined : observer(message),
    };
    if (message === undefined || !tracing.call.hasSubscribers) return this.#dispatch(plan, headers, body, signal, call, callPolicy);
    return traceAsync(tracing.call, message, () => this.#dispatch(plan, headers, body, signal, call, callPolicy), endCall);
  }

  async #dispatch(
    plan: Plan,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal | undefined,
    call: CallState,
    callPolicy: CallPolicy,
  ): Promise<Success | Failure> {
    try {
      const response = await this.#transport.dispatcher.request({
        origin: this.#origin,
        path: plan.path,
        method: 'POST',
        headers,
        body,
        ...(signal === undefined ? {} : { signal }),
        idempotent: call.safe,
        blocking: !call.safe,
        switchboard: callPolicy,
      } as Dispatcher.RequestOptions);
      return await decodeResponse(response, plan.name, plan.definition, this.#validateOutput);
    } catch (error) {
      return this.#failureOf(error, plan, signal);
    }
  }

  /** The typed failure of a call whose last attempt did not bring an answer. */
  #failureOf(error: unknown, plan: Plan, signal: AbortSignal | undefined): Failure {
    const detail = `POST ${plan.url}`;
    if (error instanceof CircuitOpenError) {
      const why = `Calls to ${this.#origin} fail fast while its circuit is ${error.state}`;
      return failure(new SwitchboardError('SB_CIRCUIT_OPEN', { detail: why, retryAfterMs: error.retryAfterMs }), false, 'unknown');
    }
    if (error instanceof RetryPauseClosed) {
      return failure(new SwitchboardError('SB_CLOSED', { detail: 'The client was closed while waiting to retry' }), false, 'unknown');
    }
    if (error instanceof AuthError) {
      return failure(new SwitchboardError('SB_UNAUTHORIZED', { detail: `${detail}: no token`, cause: error.cause }), false, 'unknown');
    }
    const cut: Cut = error instanceof CutError ? error.cut : signal?.aborted ? 'caller' : this.#closed !== undefined ? 'closed' : 'none';
    return transportFailure(error, cut, detail, signal?.reason);
  }
}

/** The verdict of one attempt for the transport's retry and breaker, by the client's rules. */
function classifyAttempt(result: AttemptResult, definition: OperationDefinition): Verdict {
  if (result.kind === 'response') return judgeResponse(result.status, result.headers, result.body, definition);
  const { error } = result;
  if (error instanceof CircuitOpenError || error instanceof AuthError) return { retry: false, health: 'unknown' };
  const failed = transportFailure(error, error instanceof CutError ? error.cut : 'none', '', undefined);
  return { retry: failed.retry, health: failed.health };
}

/** Fills a call's context from its answer. */
function endCall(message: CallMessage, outcome: Success | Failure): void {
  if (outcome.ok) return;
  message.outcome = 'error';
  message.error = outcome.error;
  message.errorType = outcome.error.code;
}

/** Traces each attempt on `switchboard:call:attempt` and counts them on the call's context. */
function observer(call: CallMessage): CallPolicy['observe'] {
  const attempts = new Map<number, ManualTrace<AttemptMessage>>();
  return {
    start(attempt, traceparent) {
      call.attempts = attempt;
      if (!tracing.attempt.hasSubscribers) return;
      const context: AttemptMessage = {
        service: call.service,
        operation: call.operation,
        method: 'POST',
        url: call.url,
        attempt,
        traceparent,
        parentTraceparent: call.parentTraceparent,
        call,
      };
      attempts.set(attempt, traceManual(tracing.attempt, context));
    },
    end(attempt, _traceparent, status, error) {
      if (status !== undefined) call.status = status;
      const trace = attempts.get(attempt);
      if (trace === undefined) return;
      attempts.delete(attempt);
      if (status !== undefined) trace.context.status = status;
      if (error === undefined && status !== undefined && status >= 400) {
        trace.context.outcome = 'error';
        trace.context.errorType = String(status);
      }
      trace.end(error);
    },
  };
}

/**
 * Creates a typed client of the service `contract` describes, reached at `options.baseUrl`.
 * Operation names, inputs, outputs and declared errors are inferred from the contract.
 */
export function createClient<C extends AnyContract>(contract: C, options: ClientOptions): Client<C> {
  return new HttpClient(contract, options);
}
