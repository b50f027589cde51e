import type { IncomingHttpHeaders } from 'node:http';
import type { HandlerContext, Invocation, Progress } from '@switchboard/core';

/** The `HandlerContext` of a call that came over HTTP. A class, so every request shares one shape. */
export class HttpHandlerContext implements HandlerContext {
  readonly operation: string;
  readonly via: Invocation = 'http';
  readonly signal: AbortSignal;
  readonly deadline: number | undefined;
  readonly traceparent: string;
  readonly tracestate: string | undefined;
  readonly idempotencyKey: string | undefined;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly principal: string | undefined;

  constructor(
    operation: string,
    signal: AbortSignal,
    deadline: number | undefined,
    traceparent: string,
    tracestate: string | undefined,
    idempotencyKey: string | undefined,
    headers: IncomingHttpHeaders,
    principal: string | undefined,
  ) {
    this.operation = operation;
    this.signal = signal;
    this.deadline = deadline;
    this.traceparent = traceparent;
    this.tracestate = tracestate;
    this.idempotencyKey = idempotencyKey;
    // Only `set-cookie` is ever an array in Node, and requests do not carry it.
    this.headers = headers as Readonly<Record<string, string | undefined>>;
    this.principal = principal;
  }

  progress(_progress: Progress): void {}
}
