import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdempotencyLock, StoredResponse } from '@switchboard/core';
import { continueTrace, SwitchboardError } from '@switchboard/core';
import { idempotencyScope, validate } from '@switchboard/core/kit';
import { requestHash } from '../idempotency/hash.js';
import { HttpHandlerContext } from './context.js';
import type { CompiledOperation } from './invoke.js';
import { invokeOperation, outcomeOfError } from './invoke.js';
import { readJsonBody } from './json.js';
import type { StaticProblem } from './respond.js';
import { JSON_TYPE, PROBLEM_TYPE, retryAfterHeader } from './respond.js';
import type { ServiceRuntime } from './runtime.js';
import { report } from './runtime.js';
import type { HttpAnswer, OperationOutcome } from './types.js';

const kCall = Symbol('switchboard.call');
type TaggedRequest = IncomingMessage & { [kCall]?: OperationRequest };

const REPLAYED = { 'idempotent-replayed': 'true' } as const;
const DIGITS = /^\d{1,15}$/;

/** What the idempotency phase decided: run the call (owning the key, or without one), or it was answered. */
type Claim = IdempotencyLock | undefined | typeof ANSWERED;
const ANSWERED = Symbol('answered');

/**
 * One operation request, from its first byte to its answer, in named phases:
 *
 * 1. **receive**: the body, counted against `bodyLimit` as it arrives (a body over it is read and
 *    dropped up to `drainLimit` more bytes, then answered 413), within `bodyTimeoutMs`;
 * 2. **parse**: UTF-8, nesting depth, JSON (400);
 * 3. **validate**: the input schema (400 with field errors);
 * 4. **deadline**: `Switchboard-Timeout-Ms` and the operation's `timeoutMs`;
 * 5. **claim**: the `Idempotency-Key` (replay, 422, 409, 503 when the store is full or down);
 * 6. **intercept**: the interceptors, the first answer wins (e.g. the job submit's 202);
 * 7. **invoke**: the handler, cut at the deadline;
 * 8. **serialize**: the outcome as an HTTP answer (500 when the result is not JSON);
 * 9. **record**: the answer stored for replays (below 500) or the key released;
 * 10. **reply**.
 *
 * Event listeners are module-level functions that find their request through a symbol, and timers
 * get it as an argument, so a request allocates no closures.
 */
export class OperationRequest {
  readonly runtime: ServiceRuntime;
  readonly operation: CompiledOperation;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Epoch ms at arrival, when a deadline applies. */
  readonly arrivedAt: number;
  first: Buffer | undefined = undefined;
  rest: Buffer[] | undefined = undefined;
  received = 0;
  /** The body is over the limit: the rest is read and dropped, then 413 is answered. */
  discarding = false;
  bodyTimer: NodeJS.Timeout | undefined = undefined;
  deadlineTimer: NodeJS.Timeout | undefined = undefined;
  controller: AbortController | undefined = undefined;
  /** The answer was written (or the client went away): nothing more is sent. */
  answered = false;

  constructor(runtime: ServiceRuntime, operation: CompiledOperation, req: IncomingMessage, res: ServerResponse) {
    this.runtime = runtime;
    this.operation = operation;
    this.req = req;
    this.res = res;
    this.arrivedAt = operation.definition.timeoutMs !== undefined || req.headers['switchboard-timeout-ms'] !== undefined ? Date.now() : 0;
  }

  // --- 1. receive ------------------------------------------------------------------------------

  /**
   * Starts reading the body. The caller already counted this request in flight. With `discard`
   * (a declared length over the limit, within the drain bound), the body is only dropped.
   */
  start(discard = false): void {
    const req = this.req as TaggedRequest;
    req[kCall] = this;
    this.discarding = discard;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    this.bodyTimer = setTimeout(onBodyTimeout, this.runtime.bodyTimeoutMs, this);
  }

  receive(chunk: Buffer): void {
    if (this.answered) return;
    this.received += chunk.length;
    const runtime = this.runtime;
    if (this.discarding || this.received > runtime.bodyLimit) {
      if (!this.discarding) {
        this.discarding = true;
        this.first = undefined;
        this.rest = undefined;
      }
      // Reading on lets a client that sends its whole body before reading see the 413 instead of
      // a broken pipe; past the drain bound the connection is given up on.
      if (this.received > runtime.bodyLimit + runtime.drainLimit) {
        this.stopReading();
        this.sendStatic(runtime.problems.bodyTooLarge);
      }
      return;
    }
    if (this.first === undefined) this.first = chunk;
    else if (this.rest === undefined) this.rest = [this.first, chunk];
    else this.rest.push(chunk);
  }

  stopReading(): void {
    clearTimeout(this.bodyTimer);
    const req = this.req as TaggedRequest;
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    req[kCall] = undefined;
  }

  bodyComplete(): void {
    this.stopReading();
    if (this.answered) return;
    if (this.discarding) {
      this.sendStatic(this.runtime.problems.bodyTooLarge);
      return;
    }
    const body = this.rest !== undefined ? Buffer.concat(this.rest, this.received) : (this.first ?? Buffer.alloc(0));
    this.first = undefined;
    this.rest = undefined;
    void this.run(body);
  }

  /** Never rejects: a bug inside a phase becomes a 500 `SB_INTERNAL`. */
  async run(body: Buffer): Promise<void> {
    let claim: Claim;
    try {
      const input = await this.parse(body);
      if (input === ANSWERED) return;
      if (!this.readDeadline()) return;
      claim = await this.claim(body);
      if (claim === ANSWERED) return;
      const context = this.context(claim?.key);
      const answer = (await this.intercept(input, context)) ?? (await this.invoke(input, context));
      if (answer === ANSWERED) return;
      await this.record(claim, answer);
      claim = undefined;
      this.send(answer.status, undefined, answer.body, answer.headers);
    } catch (error) {
      report(this.runtime, error, this.operation.name, 500);
      if (claim !== undefined && claim !== ANSWERED) await abandon(this, claim);
      this.sendStatic(this.runtime.problems.internal);
    }
  }

  // --- 2. parse, 3. validate -------------------------------------------------------------------

  async parse(body: Buffer): Promise<unknown> {
    const { runtime, operation } = this;
    const read = readJsonBody(body, runtime.maxJsonDepth);
    if (!read.ok) {
      const problems = runtime.problems;
      this.sendStatic(
        read.refusal === 'too-deep' ? problems.jsonTooDeep : read.refusal === 'not-utf8' ? problems.notUtf8 : problems.malformedJson,
      );
      return ANSWERED;
    }
    const checked = validate(operation.definition.input, read.value);
    const valid = checked instanceof Promise ? await checked : checked;
    if (valid.ok) return valid.value;
    const problem = new SwitchboardError('SB_VALIDATION', { detail: operation.validationDetail, errors: valid.errors }).toProblem();
    this.send(400, PROBLEM_TYPE, JSON.stringify(problem), undefined);
    return ANSWERED;
  }

  // --- 4. deadline -----------------------------------------------------------------------------

  /** Epoch ms the call must be answered by, if any. */
  deadline: number | undefined = undefined;

  readDeadline(): boolean {
    // Node joins repeated unknown headers with ", ", so these are strings, never arrays.
    const budget = this.req.headers['switchboard-timeout-ms'] as string | undefined;
    let deadline: number | undefined;
    if (budget !== undefined) {
      if (!DIGITS.test(budget)) {
        this.sendStatic(this.runtime.problems.badTimeout);
        return false;
      }
      deadline = this.arrivedAt + Number(budget);
    }
    const limit = this.operation.definition.timeoutMs;
    if (limit !== undefined && (deadline === undefined || this.arrivedAt + limit < deadline)) deadline = this.arrivedAt + limit;
    this.deadline = deadline;
    return true;
  }

  // --- 5. claim (Idempotency-Key) --------------------------------------------------------------

  principal: string | undefined = undefined;

  async claim(body: Buffer): Promise<Claim> {
    const { runtime, operation, req } = this;
    const problems = runtime.problems;
    this.principal = runtime.principal === undefined ? undefined : runtime.principal(req);
    const key = req.headers['idempotency-key'] as string | undefined;
    const idempotency = runtime.idempotency;
    if (key === undefined || idempotency === undefined) return undefined;
    if (key.length === 0 || key.length > 255) {
      this.sendStatic(problems.badKey);
      return ANSWERED;
    }
    const scope = idempotencyScope(operation.name, this.principal);
    let begun: Awaited<ReturnType<typeof idempotency.store.begin>>;
    try {
      begun = await idempotency.store.begin({
        scope,
        key,
        requestHash: requestHash(body),
        lockMs: idempotency.lockMs,
      });
    } catch (error) {
      report(runtime, error, operation.name, 503);
      this.sendStatic(problems.storeUnavailable);
      return ANSWERED;
    }
    switch (begun.status) {
      case 'replay':
        this.send(begun.response.status, undefined, begun.response.body, { ...begun.response.headers, ...REPLAYED });
        return ANSWERED;
      case 'mismatch':
        this.sendStatic(problems.keyReused);
        return ANSWERED;
      case 'in-progress':
        this.sendStatic(problems.keyInProgress);
        return ANSWERED;
      case 'full':
        this.sendStatic(problems.storeFull);
        return ANSWERED;
      case 'started':
        return { scope, key, token: begun.token };
    }
  }

  context(key: string | undefined): HttpHandlerContext {
    const { runtime, req } = this;
    let signal = runtime.shutdown.signal;
    if (this.deadline !== undefined) {
      this.controller = new AbortController();
      signal = this.controller.signal;
    }
    const headers = req.headers;
    // W3C Trace Context: a child span of a valid parent with its tracestate normalized; otherwise a
    // new trace, and a tracestate without a valid parent is discarded.
    const trace = continueTrace(headers.traceparent, headers.tracestate);
    return new HttpHandlerContext(
      this.operation.name,
      signal,
      this.deadline,
      trace.traceparent,
      trace.tracestate,
      key,
      headers,
      this.principal,
    );
  }

  // --- 6. intercept ----------------------------------------------------------------------------

  async intercept(input: unknown, context: HttpHandlerContext): Promise<StoredResponse | undefined> {
    const { runtime, operation } = this;
    const interceptors = runtime.interceptors;
    for (let i = 0; i < interceptors.length; i++) {
      const interceptor = interceptors[i] as (typeof interceptors)[number];
      try {
        let taken = interceptor({
          operation: operation.name,
          definition: operation.definition,
          input,
          req: this.req,
          context,
          service: runtime.service,
        });
        if (taken instanceof Promise) taken = await taken;
        if (taken !== undefined) return this.serializeAnswer(taken);
      } catch (error) {
        const answer = this.serialize(await outcomeOfError(operation, error));
        if (answer.status >= 500) report(runtime, error, operation.name, answer.status);
        return answer;
      }
    }
    return undefined;
  }

  // --- 7. invoke -------------------------------------------------------------------------------

  async invoke(input: unknown, context: HttpHandlerContext): Promise<StoredResponse | typeof ANSWERED> {
    const { runtime, operation } = this;
    const deadline = this.deadline;
    if (deadline !== undefined) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const problem = runtime.problems.deadlineExceeded;
        return { status: problem.status, headers: { 'content-type': PROBLEM_TYPE }, body: problem.body };
      }
      runtime.deadlined.add(this.controller as AbortController);
      this.deadlineTimer = setTimeout(onDeadline, remaining, this);
    }
    const outcome = await invokeOperation(operation, input, context);
    if (this.deadlineTimer !== undefined) {
      clearTimeout(this.deadlineTimer);
      runtime.deadlined.delete(this.controller as AbortController);
    }
    const answer = this.serialize(outcome);
    if (!outcome.ok && answer.status >= 500) report(runtime, outcome.error, operation.name, answer.status);
    return answer;
  }

  // --- 8. serialize ----------------------------------------------------------------------------

  /** An outcome as the answer to send and store; a result JSON cannot hold is a 500, never `null`. */
  serialize(outcome: OperationOutcome): StoredResponse {
    if (outcome.ok) {
      let body: string | undefined;
      try {
        // `undefined` (a handler that returns nothing) is sent as `null`.
        body = JSON.stringify(outcome.value) ?? 'null';
      } catch (error) {
        report(this.runtime, error, this.operation.name, 500);
        const problem = this.runtime.problems.notSerializable;
        return { status: problem.status, headers: { 'content-type': PROBLEM_TYPE }, body: problem.body };
      }
      return { status: 200, headers: { 'content-type': JSON_TYPE }, body };
    }
    const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE };
    if (outcome.retryAfterMs !== undefined) headers['retry-after'] = retryAfterHeader(outcome.retryAfterMs);
    return { status: outcome.problem.status, headers, body: JSON.stringify(outcome.problem) };
  }

  serializeAnswer(answer: HttpAnswer): StoredResponse {
    const headers: Record<string, string> = { 'content-type': answer.contentType ?? JSON_TYPE };
    if (answer.headers !== undefined) {
      for (const name in answer.headers) headers[name.toLowerCase()] = answer.headers[name] as string;
    }
    if (answer.body === undefined) return { status: answer.status, headers, body: '' };
    try {
      return { status: answer.status, headers, body: JSON.stringify(answer.body) ?? 'null' };
    } catch (error) {
      report(this.runtime, error, this.operation.name, 500);
      const problem = this.runtime.problems.notSerializable;
      return { status: problem.status, headers: { 'content-type': PROBLEM_TYPE }, body: problem.body };
    }
  }

  // --- 9. record -------------------------------------------------------------------------------

  async record(claim: Claim, answer: StoredResponse): Promise<void> {
    if (claim === undefined || claim === ANSWERED) return;
    const idempotency = this.runtime.idempotency;
    if (idempotency === undefined) return;
    // Only answers worth replaying are kept; after a 5xx a retry runs the operation again.
    if (answer.status >= 500) {
      await abandon(this, claim);
      return;
    }
    try {
      await idempotency.store.complete(claim, answer, idempotency.ttlMs);
    } catch (error) {
      report(this.runtime, error, this.operation.name, answer.status);
    }
  }

  // --- 10. reply -------------------------------------------------------------------------------

  /** Writes an answer; `contentType` undefined means it is inside `headers`. */
  send(status: number, contentType: string | undefined, body: string, headers: Readonly<Record<string, string>> | undefined): void {
    if (this.answered) return;
    this.answered = true;
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      const raw: string[] = contentType === undefined ? [] : ['content-type', contentType];
      raw.push('content-length', String(Buffer.byteLength(body)));
      if (headers !== undefined) {
        for (const name in headers) raw.push(name, headers[name] as string);
      }
      if (this.runtime.closing) raw.push('connection', 'close');
      res.writeHead(status, raw);
      res.end(body);
    }
    this.settle();
  }

  sendStatic(problem: StaticProblem): void {
    if (this.answered) return;
    this.answered = true;
    const res = this.res;
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(problem.status, this.runtime.closing ? [...problem.headers, 'connection', 'close'] : (problem.headers as string[]));
      res.end(problem.body);
    }
    this.settle();
  }

  /** Once per request: it no longer counts as in flight. */
  settle(): void {
    const runtime = this.runtime;
    runtime.inFlight--;
    if (runtime.inFlight === 0 && runtime.onDrained !== undefined) runtime.onDrained();
  }
}

async function abandon(request: OperationRequest, claim: IdempotencyLock): Promise<void> {
  try {
    await request.runtime.idempotency?.store.abandon(claim);
  } catch (error) {
    report(request.runtime, error, request.operation.name, 503);
  }
}

function onData(this: TaggedRequest, chunk: Buffer): void {
  this[kCall]?.receive(chunk);
}

function onEnd(this: TaggedRequest): void {
  this[kCall]?.bodyComplete();
}

function onError(this: TaggedRequest): void {
  // The client went away mid-body: nobody to answer.
  const request = this[kCall];
  if (request === undefined) return;
  request.stopReading();
  if (!request.answered) {
    request.answered = true;
    request.settle();
  }
}

function onBodyTimeout(request: OperationRequest): void {
  request.stopReading();
  const problems = request.runtime.problems;
  request.sendStatic(request.discarding ? problems.bodyTooLarge : problems.requestTimeout);
}

function onDeadline(request: OperationRequest): void {
  request.runtime.deadlined.delete(request.controller as AbortController);
  request.controller?.abort(
    new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `Operation ${request.operation.name} ran out of time` }),
  );
  request.sendStatic(request.runtime.problems.deadlineExceeded);
}
