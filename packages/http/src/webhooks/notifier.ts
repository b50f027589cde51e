import type { BackoffOptions, JobCallback, JobRecord, JobStore } from '@switchboard/core';
import { backoffDelay, continueTrace, isFinishedStatus, SwitchboardError } from '@switchboard/core';
import type { Dispatcher } from 'undici';
import { Agent } from 'undici';
import { statusDocument } from '../jobs/document.js';
import type { CallbackAllowList } from './allow-list.js';
import { callbackPolicy } from './allow-list.js';
import type { WebhookSecret } from './secret.js';
import { webhookKeys } from './secret.js';
import { webhookHeaders } from './sign.js';

/** Completion callbacks: where they may go, how they are signed, how hard delivery tries. */
export interface CallbackOptions {
  /** Hosts and origins callbacks may target (see `CallbackAllowList`). Required: an empty list allows none. */
  readonly allow: CallbackAllowList;
  /**
   * Signing secrets (`whsec_<base64>`). During a key rotation give the new and the old one: each
   * notice carries a signature per secret.
   */
  readonly secrets: WebhookSecret | readonly WebhookSecret[];
  /** Delivery attempts before the callback is recorded `failed`. Default 5. */
  readonly attempts?: number;
  /** Delay between attempts. Default 1 s doubling to 5 min, full jitter. */
  readonly backoff?: BackoffOptions;
  /** Time allowed for one attempt (connect to last byte of the answer), in ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** Sends the notices. Default: an undici `Agent` owned by the notifier. */
  readonly dispatcher?: Dispatcher;
}

/** The body of a completion notice (Standard Webhooks: `type`, `timestamp`, `data`). */
export interface JobCompletionNotice {
  readonly type: 'job.succeeded' | 'job.failed' | 'job.canceled';
  /** ISO 8601, when the notice was first built. */
  readonly timestamp: string;
  /** The job's status document, with `result` when it succeeded. */
  readonly data: ReturnType<typeof statusDocument> & { readonly result?: unknown };
}

/**
 * Why a delivery attempt failed, as recorded in the job's `callback.lastError`: a category, never
 * the error text, so that the submitter learns nothing about the receiver's network beyond it.
 */
export type CallbackFailure = 'connect-failed' | 'timeout' | 'http-3xx' | 'http-4xx' | 'http-5xx' | 'refused-by-policy';

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ABORT_ERR']);

function statusCategory(status: number): CallbackFailure | undefined {
  if (status >= 200 && status < 300) return undefined;
  if (status >= 500) return 'http-5xx';
  if (status >= 400) return 'http-4xx';
  // 1xx (never final) and 3xx: redirects are not followed.
  return 'http-3xx';
}

function transportCategory(error: unknown): CallbackFailure {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return 'timeout';
    if ((current as { name?: unknown }).name === 'TimeoutError') return 'timeout';
    current = (current as { cause?: unknown }).cause;
  }
  return 'connect-failed';
}

type ErrorReporter = (error: unknown, info: { readonly jobId?: string; readonly phase: string }) => void;

/**
 * Delivers signed completion notices (Standard Webhooks 1.0) for finished jobs that named a
 * callback, retrying with backoff, and records each attempt on the job (`callback` member).
 * Delivery runs in the process that finished the job; a notice still pending when that process
 * dies is not resent (its state stays `pending` on the job).
 */
export class CallbackNotifier {
  readonly check: (url: string) => URL;
  readonly #secrets: readonly Buffer[];
  readonly #attempts: number;
  readonly #backoff: BackoffOptions;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #closing = new AbortController();
  readonly #pending = new Set<Promise<void>>();
  readonly #inFlight = new Set<string>();
  readonly #onError: ErrorReporter | undefined;

  constructor(options: CallbackOptions, onError?: ErrorReporter) {
    this.check = callbackPolicy(options.allow);
    this.#secrets = webhookKeys(options.secrets);
    this.#attempts = options.attempts ?? 5;
    if (!Number.isInteger(this.#attempts) || this.#attempts < 1) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'callbacks.attempts must be an integer >= 1' });
    }
    this.#backoff = { baseMs: 1_000, maxMs: 300_000, factor: 2, jitter: 'full', ...options.backoff };
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ connections: 16, keepAliveTimeout: 4_000 });
    this.#onError = onError;
  }

  /** Starts delivering the notice of `job` (once per job and process) if it finished with a pending callback. */
  notify(store: JobStore, job: JobRecord, monitorPath: string): void {
    if (job.callback === undefined || job.callback.state !== 'pending' || !isFinishedStatus(job.status)) return;
    if (this.#closing.signal.aborted || this.#inFlight.has(job.id)) return;
    this.#inFlight.add(job.id);
    const delivery = this.#deliver(store, job, job.callback, monitorPath).finally(() => {
      this.#inFlight.delete(job.id);
      this.#pending.delete(delivery);
    });
    this.#pending.add(delivery);
  }

  /** Deliveries under way. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Stops retrying (pending callbacks keep their recorded state) and waits for attempts in flight. */
  async close(): Promise<void> {
    this.#closing.abort();
    await Promise.allSettled([...this.#pending]);
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  async #deliver(store: JobStore, job: JobRecord, callback: JobCallback, monitorPath: string): Promise<void> {
    const document = statusDocument(job, monitorPath);
    const notice: JobCompletionNotice = {
      type: `job.${job.status as 'succeeded' | 'failed' | 'canceled'}`,
      timestamp: new Date().toISOString(),
      data: job.status === 'succeeded' ? { ...document, result: job.result ?? null } : document,
    };
    const body = JSON.stringify(notice);
    const id = `job_${job.id}`;
    let attempts = callback.attempts;
    while (attempts < this.#attempts && !this.#closing.signal.aborted) {
      attempts += 1;
      const startedAt = Date.now();
      const error = await this.#send(callback.url, id, body, job);
      const last = attempts >= this.#attempts;
      const delay = error === undefined || last ? 0 : backoffDelay(attempts, this.#backoff);
      const state: JobCallback = {
        url: callback.url,
        state: error === undefined ? 'delivered' : last ? 'failed' : 'pending',
        attempts,
        lastAttemptAt: startedAt,
        ...(error === undefined || last ? {} : { nextAttemptAt: Date.now() + delay }),
        ...(error === undefined ? {} : { lastError: error }),
      };
      try {
        await store.setCallback(job.id, state);
      } catch (cause) {
        this.#onError?.(cause, { jobId: job.id, phase: 'callback-state' });
      }
      if (error === undefined || last) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#closing.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  }

  /** One attempt: `undefined` when the receiver answered 2xx, else the category of the failure. */
  async #send(url: string, id: string, body: string, job: JobRecord): Promise<CallbackFailure | undefined> {
    // Checked again here: the job may have been accepted by an instance with another allow-list.
    let target: URL;
    try {
      target = this.check(url);
    } catch {
      return 'refused-by-policy';
    }
    // Each attempt is a new span of the submitter's trace (W3C Trace Context).
    const trace = continueTrace(job.traceparent, job.tracestate);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'switchboard-webhooks/1',
      traceparent: trace.traceparent,
      ...webhookHeaders(this.#secrets, id, body),
    };
    if (trace.tracestate !== undefined) headers.tracestate = trace.tracestate;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    try {
      const response = await this.#dispatcher.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers,
        body,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: AbortSignal.any([this.#closing.signal, timeout]),
      });
      await response.body.dump();
      return statusCategory(response.statusCode);
    } catch (error) {
      return timeout.aborted ? 'timeout' : transportCategory(error);
    }
  }
}
