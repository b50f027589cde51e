import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseTraceparent, SwitchboardError } from '@switchboard/core';
import { childTraceparent, jsonNestsDeeperThan, validate } from '@switchboard/core/kit';
import { requestHash } from '../idempotency/hash.js';
import type { StoredResponse } from '../idempotency/store.js';
import { HttpHandlerContext } from './context.js';
import type { CompiledOperation } from './invoke.js';
import { invokeOperation, outcomeOfError } from './invoke.js';
import type { StaticProblem } from './respond.js';
import { JSON_TYPE, PROBLEM_TYPE, retryAfterHeader } from './respond.js';
import type { ServiceRuntime } from './runtime.js';
import { report } from './runtime.js';
import type { HttpAnswer, OperationOutcome } from './types.js';

const kCall = Symbol('switchboard.call');
type TaggedRequest = IncomingMessage & { [kCall]?: OperationRequest };

const REPLAYED = { 'idempotent-replayed': 'true' } as const;
const DIGITS = /^\d{1,15}$/;

/**
 * One operation request, from its first byte to its answer. Event listeners are module-level
 * functions that find their request through a symbol, and timers get it as an argument, so a
 * request allocates no closures.
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

  /** Starts reading the body. The caller already counted this request in flight. */
  start(): void {
    const req = this.req as TaggedRequest;
    req[kCall] = this;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    this.bodyTimer = setTimeout(onBodyTimeout, this.runtime.bodyTimeoutMs, this);
  }

  receive(chunk: Buffer): void {
    if (this.answered) return;
    this.received += chunk.length;
    if (this.received > this.runtime.bodyLimit) {
      this.stopReading();
      this.sendStatic(this.runtime.problems.bodyTooLarge);
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
    const body = this.rest !== undefined ? Buffer.concat(this.rest, this.received) : (this.first ?? Buffer.alloc(0));
    this.first = undefined;
    this.rest = undefined;
    void this.run(body);
  }

  /** Never rejects: a bug inside the pipeline becomes a 500 `SB_INTERNAL`. */
  async run(body: Buffer): Promise<void> {
    try {
      await this.pipeline(body);
    } catch (error) {
      report(this.runtime, error, this.operation.name, 500);
      this.sendStatic(this.runtime.problems.internal);
    }
  }

  async pipeline(body: Buffer): Promise<void> {
    const { runtime, operation, req } = this;
    const { problems } = runtime;
    // Invalid UTF-8 is refused, not read as U+FFFD; JSON nested past JSON_MAX_DEPTH is refused
    // before it is parsed (validators, the answer and the idempotency store would overflow the stack).
    if (!isUtf8(body)) {
      this.sendStatic(problems.notUtf8);
      return;
    }
    const text = body.toString('utf8');
    if (jsonNestsDeeperThan(text)) {
      this.sendStatic(problems.jsonTooDeep);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.sendStatic(problems.malformedJson);
      return;
    }
    const checked = validate(operation.definition.input, parsed);
    const valid = checked instanceof Promise ? await checked : checked;
    if (!valid.ok) {
      const problem = new SwitchboardError('SB_VALIDATION', { detail: operation.validationDetail, errors: valid.errors }).toProblem();
      this.send(400, PROBLEM_TYPE, JSON.stringify(problem), undefined);
      return;
    }

    // Node joins repeated unknown headers with ", ", so these are strings, never arrays.
    const headers = req.headers;
    let deadline: number | undefined;
    const budget = headers['switchboard-timeout-ms'] as string | undefined;
    if (budget !== undefined) {
      if (!DIGITS.test(budget)) {
        this.sendStatic(problems.badTimeout);
        return;
      }
      deadline = this.arrivedAt + Number(budget);
    }
    const limit = operation.definition.timeoutMs;
    if (limit !== undefined && (deadline === undefined || this.arrivedAt + limit < deadline)) deadline = this.arrivedAt + limit;

    const principal = runtime.principal === undefined ? undefined : runtime.principal(req);
    const key = headers['idempotency-key'] as string | undefined;
    const idempotency = key === undefined ? undefined : runtime.idempotency;
    const scope = idempotency === undefined ? '' : `${operation.name}:${principal ?? ''}`;
    if (idempotency !== undefined && key !== undefined) {
      if (key.length === 0 || key.length > 255) {
        this.sendStatic(problems.badKey);
        return;
      }
      let begun: Awaited<ReturnType<typeof idempotency.store.begin>>;
      try {
        begun = await idempotency.store.begin({
          scope,
          key,
          requestHash: requestHash(body),
          ttlMs: idempotency.ttlMs,
          lockMs: idempotency.lockMs,
        });
      } catch (error) {
        report(runtime, error, operation.name, 503);
        this.sendStatic(problems.storeUnavailable);
        return;
      }
      switch (begun.status) {
        case 'replay':
          this.send(begun.response.status, undefined, begun.response.body, { ...begun.response.headers, ...REPLAYED });
          return;
        case 'mismatch':
          this.sendStatic(problems.keyReused);
          return;
        case 'in-progress':
          this.sendStatic(problems.keyInProgress);
          return;
        case 'started':
          break;
      }
    }

    let signal = runtime.shutdown.signal;
    if (deadline !== undefined) {
      this.controller = new AbortController();
      signal = this.controller.signal;
    }
    const incomingTrace = headers.traceparent as string | undefined;
    const context = new HttpHandlerContext(
      operation.name,
      signal,
      deadline,
      childTraceparent(incomingTrace),
      // W3C Trace Context: the tracestate belongs to the parent; a new trace (no valid parent) drops it.
      incomingTrace !== undefined && parseTraceparent(incomingTrace) !== undefined ? (headers.tracestate as string | undefined) : undefined,
      key,
      headers,
      principal,
    );

    let answer: StoredResponse | undefined;
    const interceptors = runtime.interceptors;
    for (let i = 0; i < interceptors.length && answer === undefined; i++) {
      const interceptor = interceptors[i] as (typeof interceptors)[number];
      try {
        let taken = interceptor({
          operation: operation.name,
          definition: operation.definition,
          input: valid.value,
          req,
          context,
          service: runtime.service,
        });
        if (taken instanceof Promise) taken = await taken;
        if (taken !== undefined) answer = storedOfAnswer(taken);
      } catch (error) {
        answer = storedOfOutcome(await outcomeOfError(operation, error));
        if (answer.status >= 500) report(runtime, error, operation.name, answer.status);
      }
    }

    if (answer === undefined) {
      if (deadline !== undefined) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          if (idempotency !== undefined && key !== undefined) await abandon(this, scope, key);
          this.sendStatic(problems.deadlineExceeded);
          return;
        }
        runtime.deadlined.add(this.controller as AbortController);
        this.deadlineTimer = setTimeout(onDeadline, remaining, this);
      }
      const outcome = await invokeOperation(operation, valid.value, context);
      if (this.deadlineTimer !== undefined) {
        clearTimeout(this.deadlineTimer);
        runtime.deadlined.delete(this.controller as AbortController);
      }
      answer = storedOfOutcome(outcome);
      if (!outcome.ok && answer.status >= 500) report(runtime, outcome.error, operation.name, answer.status);
    }

    if (idempotency !== undefined && key !== undefined) {
      // Only answers worth replaying are kept; after a 5xx a retry runs the operation again.
      if (answer.status < 500) {
        try {
          await idempotency.store.complete(scope, key, answer, idempotency.ttlMs);
        } catch (error) {
          report(runtime, error, operation.name, answer.status);
        }
      } else {
        await abandon(this, scope, key);
      }
    }
    this.send(answer.status, undefined, answer.body, answer.headers);
  }

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

function storedOfOutcome(outcome: OperationOutcome): StoredResponse {
  if (outcome.ok) {
    let body: string | undefined;
    try {
      body = JSON.stringify(outcome.value);
    } catch {
      body = undefined;
    }
    return { status: 200, headers: { 'content-type': JSON_TYPE }, body: body ?? 'null' };
  }
  const headers: Record<string, string> = { 'content-type': PROBLEM_TYPE };
  if (outcome.retryAfterMs !== undefined) headers['retry-after'] = retryAfterHeader(outcome.retryAfterMs);
  return { status: outcome.problem.status, headers, body: JSON.stringify(outcome.problem) };
}

function storedOfAnswer(answer: HttpAnswer): StoredResponse {
  const headers: Record<string, string> = { 'content-type': answer.contentType ?? JSON_TYPE };
  if (answer.headers !== undefined) {
    for (const name in answer.headers) headers[name.toLowerCase()] = answer.headers[name] as string;
  }
  return { status: answer.status, headers, body: answer.body === undefined ? '' : (JSON.stringify(answer.body) ?? 'null') };
}

async function abandon(request: OperationRequest, scope: string, key: string): Promise<void> {
  try {
    await request.runtime.idempotency?.store.abandon(scope, key);
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
  request.sendStatic(request.runtime.problems.requestTimeout);
}

function onDeadline(request: OperationRequest): void {
  request.runtime.deadlined.delete(request.controller as AbortController);
  request.controller?.abort(
    new SwitchboardError('SB_DEADLINE_EXCEEDED', { detail: `Operation ${request.operation.name} ran out of time` }),
  );
  request.sendStatic(request.runtime.problems.deadlineExceeded);
}
