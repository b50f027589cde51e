import type { AnyContract, CallInput, CallOutput, OperationName } from '@switchboard/core';
import type { Dispatcher } from 'undici';
import type { JobStatusDocument } from './document.js';

export interface JobsClientOptions {
  /** Where the service is mounted, e.g. `http://analysis.internal:8080`. */
  readonly baseUrl: string | URL;
  /** Sends every request. Default: an undici `Agent` owned (and closed) by the client. */
  readonly dispatcher?: Dispatcher;
  /** Headers sent with every request (credentials, for instance). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Bearer token for every request (`Authorization: Bearer <token>`), asked before each one. */
  readonly auth?: () => Promise<string | undefined>;
  /** Check the input against the contract before submitting. Default true. */
  readonly validateInput?: boolean;
  /** Check the result against the output schema (transforms applied). Default false. */
  readonly validateOutput?: boolean;
  /** Attempts of a submit (connection errors, 408, 429, 502-504 and in-progress keys are retried). Default 3. */
  readonly submitAttempts?: number;
  /** Defaults of `wait`. */
  readonly wait?: WaitDefaults;
}

export type WaitTransport = 'long-poll' | 'sse' | 'poll';

export interface WaitDefaults {
  /** Default `long-poll`; falls back to plain polling when the server does not hold requests. */
  readonly transport?: WaitTransport;
  /** Overall budget of a `wait`, in ms. Default 300 000. */
  readonly timeoutMs?: number;
  /** Shortest pause between two polls, in ms, whatever `Retry-After` says. Default 100. */
  readonly minIntervalMs?: number;
  /** Longest pause between two polls, in ms. Default 30 000. */
  readonly maxIntervalMs?: number;
  /** Pause when the server sends no `Retry-After`: starts here and doubles up to `maxIntervalMs`. Default 500. */
  readonly intervalMs?: number;
  /** How long one long-poll asks the server to hold the request, in seconds. Default 20. */
  readonly longPollSeconds?: number;
  /** Consecutive failed polls (connection errors, 429, 5xx) before giving up. Default 10. */
  readonly maxErrors?: number;
}

/** One request of the jobs client, reported to `onRequest` (for counting polls, for instance). */
export interface JobRequestInfo {
  readonly kind: 'submit' | 'status' | 'events' | 'result' | 'cancel';
  readonly method: string;
  readonly url: string;
  /** `undefined` when no answer arrived. */
  readonly status: number | undefined;
  readonly traceparent: string;
  readonly durationMs: number;
}

export interface SubmitOptions {
  /** Default: a new key, reused by every attempt of this submit. */
  readonly idempotencyKey?: string;
  /** Completion callback URL (must be on the server's allow-list). */
  readonly callbackUrl?: string;
  /** W3C `traceparent` of the caller: the submit and every poll continue its trace. */
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly signal?: AbortSignal;
  /** Budget of the submit (all attempts), in ms. Default 30 000. */
  readonly timeoutMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly onRequest?: (info: JobRequestInfo) => void;
}

export interface WaitOptions extends WaitDefaults {
  readonly signal?: AbortSignal;
  /** Absolute deadline (epoch ms); the earlier of it and `timeoutMs` ends the wait. */
  readonly deadline?: number;
  /** Cancel the job (DELETE on its monitor) when the wait is aborted or its deadline passes. Default false. */
  readonly cancelOnAbort?: boolean;
  /** Every status document received. */
  readonly onStatus?: (status: JobStatusDocument) => void;
  /** Each new progress value the handler reported. */
  readonly onProgress?: (progress: unknown, status: JobStatusDocument) => void;
  readonly onRequest?: (info: JobRequestInfo) => void;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A job as the client knows it. */
export interface JobRef<K extends string = string> {
  readonly operation: K;
  readonly jobId: string;
  /** Absolute URL of the status monitor. Default: `{baseUrl}/jobs/{jobId}`. */
  readonly statusUrl?: string;
  /** The trace of the submit; polls, the event stream, the result fetch and cancel continue it. */
  readonly traceparent?: string;
  /** The `tracestate` sent with the submit; every later request of the job sends it too. */
  readonly tracestate?: string;
}

export interface SubmittedJob<K extends string = string> extends JobRef<K> {
  readonly statusUrl: string;
  readonly traceparent: string;
  /** The status document of the 202 answer. */
  readonly status: JobStatusDocument;
  /** True when the server answered a retried submit from its idempotency store (no second job). */
  readonly replayed: boolean;
}

/** Options of a single `status` or `cancel` request. */
export interface JobRequestOptions {
  readonly signal?: AbortSignal;
  /** The trace to continue (with its `tracestate`); default the job's own. */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

export interface JobsClient<C extends AnyContract> {
  readonly contract: C;
  /** Submits a job (`Prefer: respond-async`); resolves once the server accepted it (202). */
  submit<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: SubmitOptions): Promise<SubmittedJob<K>>;
  /**
   * Follows the job's monitor until it finishes. Resolves with the typed result; rejects with the
   * operation's declared `OperationError`, `SB_JOB_FAILED` (the job's problem in
   * `extensions.problem`), `SB_JOB_CANCELED`, `SB_JOB_GONE`, `SB_NOT_FOUND`, `SB_DEADLINE_EXCEEDED`
   * or `SB_ABORTED`.
   */
  wait<K extends OperationName<C>>(job: JobRef<K>, options?: WaitOptions): Promise<CallOutput<C, K>>;
  /** `submit` then `wait`. */
  run<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options?: SubmitOptions & WaitOptions): Promise<CallOutput<C, K>>;
  /** The job's status document now (one request). */
  status(job: JobRef | string, options?: JobRequestOptions): Promise<JobStatusDocument>;
  /**
   * Cancels the job: resolves with its status (`canceled`, or still `running` while its handler
   * stops); rejects with `SB_JOB_FINISHED` when it already finished.
   */
  cancel(job: JobRef | string, options?: JobRequestOptions): Promise<JobStatusDocument>;
  /** Closes the dispatcher the client created. */
  close(): Promise<void>;
}
