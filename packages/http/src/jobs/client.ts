import type {
  AnyContract,
  CallInput,
  CallOutput,
  JobPollMessage,
  JobSubmitMessage,
  OperationDefinition,
  OperationName,
  ProblemDetails,
} from '@switchboard/core';
import { backoffDelay, newMessageId, OperationError, SwitchboardError, traceAsync, tracing } from '@switchboard/core';
import { parseRetryAfter, sleep, validate } from '@switchboard/core/kit';
import type { Dispatcher } from 'undici';
import { transportFailure } from '../client/failure.js';
import { decodeResponse } from '../client/response.js';
import type { Trace } from '../client/trace.js';
import { traceOf } from '../client/trace.js';
import { AuthError } from '../transport/auth.js';
import type { CallPolicy } from '../transport/policy.js';
import { CutError } from '../transport/policy.js';
import type { Transport } from '../transport/transport.js';
import { createTransport } from '../transport/transport.js';
import { readEvents } from './client-sse.js';
import type {
  JobRef,
  JobRequestInfo,
  JobsClient,
  JobsClientOptions,
  SubmitOptions,
  SubmittedJob,
  WaitDefaults,
  WaitOptions,
  WaitTransport,
} from './client-types.js';
import type { JobStatusDocument } from './document.js';

const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

interface Sent {
  readonly response: Dispatcher.ResponseData;
  readonly traceparent: string;
}

interface Settings {
  readonly transport: WaitTransport;
  readonly timeoutMs: number;
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly intervalMs: number;
  readonly longPollSeconds: number;
  readonly maxErrors: number;
}

/** What one poll learned. */
type Poll =
  | {
      readonly kind: 'status';
      readonly status: JobStatusDocument;
      readonly etag: string | undefined;
      readonly held: boolean;
      readonly retryAfterMs: number | undefined;
    }
  | { readonly kind: 'unchanged'; readonly held: boolean; readonly retryAfterMs: number | undefined }
  | { readonly kind: 'done'; readonly resultUrl: string; readonly status: JobStatusDocument | undefined }
  | { readonly kind: 'transient'; readonly error: SwitchboardError; readonly retryAfterMs: number | undefined };

/** Per-wait state. */
interface Waiting {
  readonly operation: string;
  readonly definition: OperationDefinition;
  readonly statusUrl: string;
  readonly trace: Trace;
  readonly deadline: number;
  readonly signal: AbortSignal;
  readonly options: WaitOptions;
  readonly settings: Settings;
  etag: string | undefined;
  progress: string | undefined;
  readonly jobId: string;
  /** The submit's `traceparent`. */
  readonly traceparent: string | undefined;
  /** Polls so far (for `switchboard:job:poll`). */
  polls: number;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function lowerCaseKeys(headers: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) result[name.toLowerCase()] = value;
  return result;
}

function isStatusDocument(value: unknown): value is JobStatusDocument {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { id?: unknown }).id === 'string' &&
    typeof (value as { status?: unknown }).status === 'string'
  );
}

function badGateway(detail: string, status?: number): SwitchboardError {
  return new SwitchboardError('SB_BAD_GATEWAY', { detail, ...(status === undefined ? {} : { extensions: { upstreamStatus: status } }) });
}

class HttpJobsClient<C extends AnyContract> implements JobsClient<C> {
  readonly contract: C;
  readonly #base: string;
  readonly #transport: Transport;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #validateInput: boolean;
  readonly #validateOutput: boolean;
  readonly #submitAttempts: number;
  readonly #settings: Settings;
  readonly #closing = new AbortController();

  constructor(contract: C, options: JobsClientOptions) {
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
    this.#base = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
    this.#transport = createTransport({
      connections: 64,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
    });
    this.#headers = lowerCaseKeys(options.headers);
    this.#validateInput = options.validateInput ?? true;
    this.#validateOutput = options.validateOutput ?? false;
    this.#submitAttempts = options.submitAttempts ?? 3;
    if (!Number.isInteger(this.#submitAttempts) || this.#submitAttempts < 1) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'submitAttempts must be an integer >= 1' });
    }
    this.#settings = settingsOf(options.wait ?? {}, undefined);
  }

  #definition(operation: string): OperationDefinition {
    if (!Object.hasOwn(this.contract.operations, operation)) {
      throw new SwitchboardError('SB_UNKNOWN_OPERATION', { detail: `Contract ${this.contract.name} has no operation ${operation}` });
    }
    return this.contract.operations[operation] as OperationDefinition;
  }

  #monitorUrl(job: JobRef | string): string {
    if (typeof job !== 'string' && job.statusUrl !== undefined) return job.statusUrl;
    const id = typeof job === 'string' ? job : job.jobId;
    return `${this.#base}/jobs/${encodeURIComponent(id)}`;
  }

  submit<K extends OperationName<C>>(operation: K, input: CallInput<C, K>, options: SubmitOptions = {}): Promise<SubmittedJob<K>> {
    if (!tracing.jobSubmit.hasSubscribers) return this.#submit(operation, input, options);
    const context: JobSubmitMessage = {
      service: this.contract.name,
      operation,
      url: `${this.#base}/ops/${encodeURIComponent(operation)}`,
      idempotencyKey: options.idempotencyKey,
      parentTraceparent: options.traceparent,
    };
    return traceAsync(
      tracing.jobSubmit,
      context,
      () => this.#submit(operation, input, options, context),
      (message, job) => {
        message.jobId = job.jobId;
        message.status = 202;
        if (job.traceparent !== undefined) message.traceparent = job.traceparent;
      },
    );
  }

  async #submit<K extends OperationName<C>>(
    operation: K,
    input: CallInput<C, K>,
    options: SubmitOptions,
    trace?: JobSubmitMessage,
  ): Promise<SubmittedJob<K>> {
    const definition = this.#definition(operation);
    if (definition.mode === 'sync') {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Operation ${operation} is declared sync-only; call it instead` });
    }
    if (this.#validateInput) {
      const checked = await validate(definition.input, input);
      if (!checked.ok) {
        throw new SwitchboardError('SB_VALIDATION', {
          detail: `Input of operation ${operation} does not match its schema`,
          errors: checked.errors,
        });
      }
    }
    const body = JSON.stringify(input) ?? 'null';
    const key = options.idempotencyKey ?? newMessageId();
    if (trace !== undefined) (trace as { idempotencyKey: string | undefined }).idempotencyKey = key;
    const traced = traceOf(options.traceparent);
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const signal = this.#signal(options.signal);
    const url = `${this.#base}/ops/${encodeURIComponent(operation)}`;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = {
        ...this.#headers,
        ...lowerCaseKeys(options.headers),
        'content-type': 'application/json',
        accept: 'application/json',
        prefer: 'respond-async',
        'idempotency-key': key,
      };
      if (options.callbackUrl !== undefined) headers['switchboard-callback'] = options.callbackUrl;
      if (options.tracestate !== undefined && traced.continued) headers.tracestate = options.tracestate;
      let retry: { error: SwitchboardError; retryAfterMs: number | undefined };
      try {
        const sent = await this.#send(
          'submit',
          'POST',
          url,
          headers,
          traced,
          deadline,
          signal,
          options.onRequest,
          body,
          false,
          trace === undefined
            ? undefined
            : (sent) => {
                trace.traceparent = sent;
              },
        );
        const { response } = sent;
        if (trace !== undefined) trace.status = response.statusCode;
        if (response.statusCode === 202) {
          const location = header(response.headers.location);
          const json: unknown = await response.body.json().catch(() => undefined);
          if (location === undefined || !isStatusDocument(json))
            throw badGateway('The 202 answer has no Location or no status document', 202);
          return {
            operation,
            jobId: json.id,
            statusUrl: new URL(location, url).toString(),
            traceparent: sent.traceparent,
            status: json,
            replayed: header(response.headers['idempotent-replayed']) === 'true',
          };
        }
        if (response.statusCode >= 200 && response.statusCode < 300) {
          await response.body.dump();
          throw badGateway(`The service answered ${response.statusCode} instead of accepting a job`, response.statusCode);
        }
        const decoded = await decodeResponse(response, operation, definition, false);
        if (decoded.ok) throw badGateway('Unexpected answer to a submit', response.statusCode);
        const error = decoded.error;
        const again =
          error instanceof SwitchboardError && (RETRY_STATUSES.has(response.statusCode) || error.code === 'SB_IDEMPOTENCY_IN_PROGRESS');
        if (!again) throw error;
        retry = { error, retryAfterMs: decoded.retryAfterMs };
      } catch (error) {
        if (!(error instanceof Transient)) throw error;
        retry = { error: error.error, retryAfterMs: undefined };
      }
      if (attempt >= this.#submitAttempts) throw retry.error;
      const delay = Math.min(retry.retryAfterMs ?? backoffDelay(attempt, { baseMs: 200, maxMs: 5_000 }), this.#settings.maxIntervalMs);
      if (Date.now() + delay >= deadline) throw retry.error;
      await this.#pause(delay, signal, url);
    }
  }

  async wait<K extends OperationName<C>>(job: JobRef<K>, options: WaitOptions = {}): Promise<CallOutput<C, K>> {
    const definition = this.#definition(job.operation);
    const settings = settingsOf(options, this.#settings);
    let deadline = Date.now() + settings.timeoutMs;
    if (options.deadline !== undefined && options.deadline < deadline) deadline = options.deadline;
    const waiting: Waiting = {
      operation: job.operation,
      definition,
      statusUrl: this.#monitorUrl(job),
      trace: traceOf(job.traceparent),
      deadline,
      signal: this.#signal(options.signal),
      options,
      settings,
      etag: undefined,
      progress: undefined,
      jobId: job.jobId,
      traceparent: job.traceparent,
      polls: 0,
    };
    try {
      return (await this.#follow(waiting)) as CallOutput<C, K>;
    } catch (error) {
      const stopped = error instanceof SwitchboardError && (error.code === 'SB_ABORTED' || error.code === 'SB_DEADLINE_EXCEEDED');
      if (stopped && options.cancelOnAbort === true) await this.#cancelQuietly(waiting);
      throw error;
    }
  }

  async run<K extends OperationName<C>>(
    operation: K,
    input: CallInput<C, K>,
    options: SubmitOptions & WaitOptions = {},
  ): Promise<CallOutput<C, K>> {
    const submitted = await this.submit(operation, input, options);
    return this.wait(submitted, options);
  }

  async status(
    job: JobRef | string,
    options: { readonly signal?: AbortSignal; readonly traceparent?: string } = {},
  ): Promise<JobStatusDocument> {
    const url = this.#monitorUrl(job);
    const trace = traceOf(options.traceparent ?? (typeof job === 'string' ? undefined : job.traceparent));
    const { response } = await this.#send(
      'status',
      'GET',
      url,
      { ...this.#headers, accept: 'application/json' },
      trace,
      Date.now() + 30_000,
      this.#signal(options.signal),
      undefined,
    );
    return this.#documentOf(response, typeof job === 'string' ? undefined : job.operation);
  }

  async cancel(
    job: JobRef | string,
    options: { readonly signal?: AbortSignal; readonly traceparent?: string } = {},
  ): Promise<JobStatusDocument> {
    const url = this.#monitorUrl(job);
    const trace = traceOf(options.traceparent ?? (typeof job === 'string' ? undefined : job.traceparent));
    const { response } = await this.#send(
      'cancel',
      'DELETE',
      url,
      { ...this.#headers, accept: 'application/json' },
      trace,
      Date.now() + 30_000,
      this.#signal(options.signal),
      undefined,
    );
    return this.#documentOf(response, typeof job === 'string' ? undefined : job.operation);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.#transport.close();
  }

  /** A status answer (200, 202, 303) as a document, or its problem as an error. */
  async #documentOf(response: Dispatcher.ResponseData, operation: string | undefined): Promise<JobStatusDocument> {
    if (response.statusCode === 200 || response.statusCode === 202 || response.statusCode === 303) {
      const json: unknown = await response.body.json().catch(() => undefined);
      if (!isStatusDocument(json)) throw badGateway('The status answer is not a status document', response.statusCode);
      return json;
    }
    throw await this.#problemError(response, operation);
  }

  async #problemError(response: Dispatcher.ResponseData, operation: string | undefined): Promise<SwitchboardError | OperationError> {
    const definition: OperationDefinition | undefined =
      operation === undefined ? undefined : (this.contract.operations[operation] as OperationDefinition | undefined);
    const decoded = await decodeResponse(response, operation ?? 'job', definition ?? NO_ERRORS, false);
    if (decoded.ok) return badGateway(`Unexpected ${response.statusCode} answer`, response.statusCode);
    return decoded.error;
  }

  async #follow(waiting: Waiting): Promise<unknown> {
    const { settings } = waiting;
    let useSse = settings.transport === 'sse';
    let errors = 0;
    let quiet = 0;
    for (;;) {
      if (useSse) {
        const ended = await this.#stream(waiting);
        if (ended !== undefined) return this.#result(waiting, ended);
        // The stream could not be used or ended early: go on by long-polling.
        useSse = false;
      }
      const poll = await this.#tracedPoll(waiting, settings.transport !== 'poll');
      let pause: number;
      switch (poll.kind) {
        case 'done':
          return this.#result(waiting, poll.resultUrl);
        case 'transient':
          errors += 1;
          if (errors >= settings.maxErrors) throw poll.error;
          pause =
            poll.retryAfterMs ?? backoffDelay(errors, { baseMs: settings.intervalMs, maxMs: settings.maxIntervalMs, jitter: 'equal' });
          break;
        case 'status':
        case 'unchanged': {
          errors = 0;
          if (poll.kind === 'status') {
            const finished = this.#observe(waiting, poll.status);
            if (finished !== undefined) return finished;
          }
          // A server that held the request already spaced the polls out.
          if (poll.held) {
            pause = 0;
            break;
          }
          quiet += 1;
          pause = poll.retryAfterMs ?? backoffDelay(quiet, { baseMs: settings.intervalMs, maxMs: settings.maxIntervalMs, jitter: 'none' });
          break;
        }
      }
      const floor = (poll.kind === 'status' || poll.kind === 'unchanged') && poll.held ? 0 : settings.minIntervalMs;
      pause = Math.min(Math.max(pause, floor), settings.maxIntervalMs);
      if (Date.now() + pause >= waiting.deadline) {
        await this.#pause(Math.max(0, waiting.deadline - Date.now()), waiting.signal, waiting.statusUrl);
        throw deadlineError(waiting);
      }
      if (pause > 0) await this.#pause(pause, waiting.signal, waiting.statusUrl);
    }
  }

  /** Reports the status; answers a final outcome (throws for failed and canceled jobs). */
  #observe(waiting: Waiting, status: JobStatusDocument): undefined {
    waiting.options.onStatus?.(status);
    if (status.progress !== undefined) {
      const serialised = JSON.stringify(status.progress);
      if (serialised !== waiting.progress) {
        waiting.progress = serialised;
        waiting.options.onProgress?.(status.progress, status);
      }
    }
    if (status.status === 'failed') throw this.#jobError(waiting, status);
    if (status.status === 'canceled') {
      throw new SwitchboardError('SB_JOB_CANCELED', { detail: `Job ${status.id} was canceled`, extensions: { jobId: status.id } });
    }
    return undefined;
  }

  #jobError(waiting: Waiting, status: JobStatusDocument): SwitchboardError | OperationError {
    const problem: ProblemDetails | undefined = status.error;
    if (problem !== undefined && Object.hasOwn(waiting.definition.errors, problem.code)) {
      return new OperationError(problem.code, {
        data: problem.data,
        status: problem.status,
        ...(typeof problem.detail === 'string' ? { detail: problem.detail } : {}),
      });
    }
    return new SwitchboardError('SB_JOB_FAILED', {
      detail: problem?.detail ?? problem?.title ?? `Job ${status.id} failed`,
      extensions: { jobId: status.id, ...(problem === undefined ? {} : { problem }) },
    });
  }

  /** `#poll`, traced on `switchboard:job:poll` when someone listens. */
  #tracedPoll(waiting: Waiting, longPoll: boolean): Promise<Poll> {
    waiting.polls += 1;
    if (!tracing.jobPoll.hasSubscribers) return this.#poll(waiting, longPoll);
    const context: JobPollMessage = {
      jobId: waiting.jobId,
      url: waiting.statusUrl,
      poll: waiting.polls,
      parentTraceparent: waiting.traceparent,
    };
    return traceAsync(
      tracing.jobPoll,
      context,
      () => this.#poll(waiting, longPoll, context),
      (message, poll) => {
        if (poll.kind === 'status' || poll.kind === 'done') message.jobStatus = poll.status?.status ?? 'succeeded';
        if (poll.kind === 'status' || poll.kind === 'unchanged' || poll.kind === 'transient') {
          if (poll.retryAfterMs !== undefined) message.retryAfterMs = poll.retryAfterMs;
        }
        if (poll.kind === 'transient') {
          message.outcome = 'error';
          message.error = poll.error;
          message.errorType = poll.error.code;
        }
      },
    );
  }

  async #poll(waiting: Waiting, longPoll: boolean, trace?: JobPollMessage): Promise<Poll> {
    const remaining = waiting.deadline - Date.now();
    const hold = longPoll ? Math.min(waiting.settings.longPollSeconds, Math.floor(remaining / 1000) - 1) : 0;
    const headers: Record<string, string> = { ...this.#headers, ...lowerCaseKeys(waiting.options.headers), accept: 'application/json' };
    if (waiting.etag !== undefined) headers['if-none-match'] = waiting.etag;
    if (hold > 0) headers.prefer = `wait=${hold}`;
    let response: Dispatcher.ResponseData;
    try {
      ({ response } = await this.#send(
        'status',
        'GET',
        waiting.statusUrl,
        headers,
        waiting.trace,
        waiting.deadline,
        waiting.signal,
        waiting.options.onRequest,
      ));
    } catch (error) {
      if (error instanceof Transient) return { kind: 'transient', error: error.error, retryAfterMs: undefined };
      throw error;
    }
    if (trace !== undefined) trace.status = response.statusCode;
    const retryAfterMs = parseRetryAfter(header(response.headers['retry-after']));
    const held = hold > 0 && /\bwait=/.test(header(response.headers['preference-applied']) ?? '');
    switch (response.statusCode) {
      case 200: {
        const json: unknown = await response.body.json().catch(() => undefined);
        if (!isStatusDocument(json))
          return { kind: 'transient', error: badGateway('The status answer is not a status document', 200), retryAfterMs };
        waiting.etag = header(response.headers.etag);
        if (json.status === 'succeeded')
          return {
            kind: 'done',
            resultUrl: new URL(json.resultUrl ?? `${waiting.statusUrl}/result`, waiting.statusUrl).toString(),
            status: json,
          };
        return { kind: 'status', status: json, etag: waiting.etag, held, retryAfterMs };
      }
      case 303: {
        const json: unknown = await response.body.json().catch(() => undefined);
        const location = header(response.headers.location) ?? `${waiting.statusUrl}/result`;
        if (isStatusDocument(json)) this.#observe(waiting, json);
        return {
          kind: 'done',
          resultUrl: new URL(location, waiting.statusUrl).toString(),
          status: isStatusDocument(json) ? json : undefined,
        };
      }
      case 304:
        await response.body.dump();
        return { kind: 'unchanged', held, retryAfterMs };
      default: {
        const error = await this.#problemError(response, waiting.operation);
        if (RETRY_STATUSES.has(response.statusCode) || response.statusCode >= 500) {
          return {
            kind: 'transient',
            error: error instanceof SwitchboardError ? error : badGateway('Upstream failure', response.statusCode),
            retryAfterMs,
          };
        }
        throw error;
      }
    }
  }

  /** Follows the server-sent event stream: the result URL once succeeded, `undefined` to fall back to polling. */
  async #stream(waiting: Waiting): Promise<string | undefined> {
    const headers: Record<string, string> = { ...this.#headers, ...lowerCaseKeys(waiting.options.headers), accept: 'text/event-stream' };
    let response: Dispatcher.ResponseData;
    try {
      ({ response } = await this.#send(
        'events',
        'GET',
        waiting.statusUrl,
        headers,
        waiting.trace,
        waiting.deadline,
        waiting.signal,
        waiting.options.onRequest,
        undefined,
        true,
      ));
    } catch (error) {
      if (error instanceof Transient) return undefined;
      throw error;
    }
    if (response.statusCode !== 200 || !/^text\/event-stream/i.test(header(response.headers['content-type']) ?? '')) {
      if (response.statusCode === 404 || response.statusCode === 410) throw await this.#problemError(response, waiting.operation);
      await response.body.dump();
      return undefined;
    }
    try {
      for await (const event of readEvents(response.body)) {
        if (event.event !== 'status') continue;
        const status: unknown = JSON.parse(event.data);
        if (!isStatusDocument(status)) continue;
        if (status.status === 'succeeded') {
          this.#observe(waiting, status);
          return new URL(status.resultUrl ?? `${waiting.statusUrl}/result`, waiting.statusUrl).toString();
        }
        this.#observe(waiting, status);
      }
    } catch (error) {
      if (error instanceof SwitchboardError || error instanceof OperationError) throw error;
      if (waiting.signal.aborted) throw abortedError(waiting);
      if (Date.now() >= waiting.deadline) throw deadlineError(waiting);
    } finally {
      response.body.destroy();
    }
    return undefined;
  }

  async #result(waiting: Waiting, url: string): Promise<unknown> {
    for (let errors = 1; ; errors++) {
      const headers = { ...this.#headers, ...lowerCaseKeys(waiting.options.headers), accept: 'application/json' };
      let response: Dispatcher.ResponseData;
      try {
        ({ response } = await this.#send(
          'result',
          'GET',
          url,
          headers,
          waiting.trace,
          waiting.deadline,
          waiting.signal,
          waiting.options.onRequest,
        ));
      } catch (error) {
        if (!(error instanceof Transient) || errors >= waiting.settings.maxErrors) throw error instanceof Transient ? error.error : error;
        await this.#pause(
          backoffDelay(errors, { baseMs: waiting.settings.intervalMs, maxMs: waiting.settings.maxIntervalMs }),
          waiting.signal,
          url,
        );
        continue;
      }
      const decoded = await decodeResponse(response, waiting.operation, waiting.definition, this.#validateOutput);
      if (decoded.ok) return decoded.value;
      if (!decoded.retry || errors >= waiting.settings.maxErrors) throw decoded.error;
      await this.#pause(
        decoded.retryAfterMs ?? backoffDelay(errors, { baseMs: waiting.settings.intervalMs, maxMs: waiting.settings.maxIntervalMs }),
        waiting.signal,
        url,
      );
    }
  }

  async #cancelQuietly(waiting: Waiting): Promise<void> {
    try {
      const { response } = await this.#send(
        'cancel',
        'DELETE',
        waiting.statusUrl,
        { ...this.#headers, accept: 'application/json' },
        waiting.trace,
        Date.now() + 5_000,
        this.#closing.signal,
        waiting.options.onRequest,
      );
      await response.body.dump();
    } catch {
      // Best effort: the wait already failed with its own reason.
    }
  }

  #signal(signal: AbortSignal | undefined): AbortSignal {
    return signal === undefined ? this.#closing.signal : AbortSignal.any([signal, this.#closing.signal]);
  }

  async #pause(ms: number, signal: AbortSignal, url: string): Promise<void> {
    try {
      await sleep(ms, signal);
    } catch (reason) {
      throw this.#closing.signal.aborted
        ? new SwitchboardError('SB_CLOSED', { detail: 'The client was closed' })
        : new SwitchboardError('SB_ABORTED', { detail: `Waiting for ${url}`, cause: reason });
    }
  }

  /**
   * Sends one request with a fresh span of `trace`, cut at `deadline` or by `signal`. Transport
   * failures worth another try reject with `Transient`; aborts and deadlines with their errors.
   */
  async #send(
    kind: JobRequestInfo['kind'],
    method: string,
    url: string,
    headers: Record<string, string>,
    trace: Trace,
    deadline: number,
    signal: AbortSignal,
    onRequest: ((info: JobRequestInfo) => void) | undefined,
    body?: string,
    streaming = false,
    onSent?: (traceparent: string) => void,
  ): Promise<Sent> {
    const target = new URL(url);
    if (signal.aborted)
      throw this.#closing.signal.aborted
        ? new SwitchboardError('SB_CLOSED')
        : new SwitchboardError('SB_ABORTED', { detail: `${method} ${url}`, cause: signal.reason });
    let traceparent = '';
    let started = 0;
    // Tracing and the deadline are the transport's interceptors; this request is sent once.
    const policy: CallPolicy = {
      trace,
      deadline,
      observe: {
        start: (_attempt, sent) => {
          traceparent = sent ?? '';
          started = performance.now();
          onSent?.(traceparent);
        },
        end: (_attempt, sent, status) => {
          onRequest?.({ kind, method, url, status, traceparent: sent ?? '', durationMs: performance.now() - started });
        },
      },
    };
    try {
      const response = await this.#transport.dispatcher.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
        ...(streaming ? { bodyTimeout: 0 } : {}),
        switchboard: policy,
      } as Dispatcher.RequestOptions);
      return { response, traceparent };
    } catch (error) {
      if (signal.aborted) {
        throw this.#closing.signal.aborted
          ? new SwitchboardError('SB_CLOSED')
          : new SwitchboardError('SB_ABORTED', { detail: `${method} ${url}`, cause: signal.reason });
      }
      if (error instanceof CutError)
        throw new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `${method} ${url}: the deadline passed` });
      if (error instanceof AuthError)
        throw new SwitchboardError('SB_UNAUTHORIZED', { detail: `${method} ${url}: no token`, cause: error.cause });
      const failed = transportFailure(error, 'none', `${method} ${url}`, undefined);
      if (failed.retry && failed.error instanceof SwitchboardError) throw new Transient(failed.error);
      throw failed.error;
    }
  }
}

/** A failure worth another try (connection refused or reset). */
class Transient extends Error {
  readonly error: SwitchboardError;
  constructor(error: SwitchboardError) {
    super(error.message);
    this.error = error;
  }
}

const NO_ERRORS = { errors: {} } as unknown as OperationDefinition;

function deadlineError(waiting: Waiting): SwitchboardError {
  return new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `The job at ${waiting.statusUrl} did not finish in time` });
}

function abortedError(waiting: Waiting): SwitchboardError {
  return new SwitchboardError('SB_ABORTED', { detail: `Waiting for ${waiting.statusUrl}`, cause: waiting.signal.reason });
}

function settingsOf(options: WaitDefaults, fallback: Settings | undefined): Settings {
  const pick = (name: keyof Omit<WaitDefaults, 'transport'>, value: number | undefined, base: number): number => {
    const chosen = value ?? fallback?.[name] ?? base;
    if (!(chosen > 0) || !Number.isFinite(chosen))
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `wait.${name} must be a positive number` });
    return chosen;
  };
  return {
    transport: options.transport ?? fallback?.transport ?? 'long-poll',
    timeoutMs: pick('timeoutMs', options.timeoutMs, 300_000),
    minIntervalMs: pick('minIntervalMs', options.minIntervalMs, 100),
    maxIntervalMs: pick('maxIntervalMs', options.maxIntervalMs, 30_000),
    intervalMs: pick('intervalMs', options.intervalMs, 500),
    longPollSeconds: pick('longPollSeconds', options.longPollSeconds, 20),
    maxErrors: pick('maxErrors', options.maxErrors, 10),
  };
}

/**
 * A typed client for the asynchronous side of a service: `submit` a job, `wait` for its result
 * (long-polling, server-sent events or polling, honouring `Retry-After`), `status`, `cancel`.
 */
export function createJobsClient<C extends AnyContract>(contract: C, options: JobsClientOptions): JobsClient<C> {
  return new HttpJobsClient(contract, options);
}
