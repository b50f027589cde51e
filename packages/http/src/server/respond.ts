import type { ServerResponse } from 'node:http';
import type { ErrorCode, ProblemDetails } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

export const JSON_TYPE = 'application/json';
export const PROBLEM_TYPE = 'application/problem+json';

/** Extra response headers: lower-case name to value. */
export type ResponseHeaders = Readonly<Record<string, string>>;

/**
 * Writes a complete response in one `writeHead` + `end`, with `content-length`, so Node sends
 * headers and body in a single write and never falls back to chunked encoding.
 */
export function writeResponse(res: ServerResponse, status: number, contentType: string, body: string, headers?: ResponseHeaders): void {
  if (res.headersSent || res.destroyed) return;
  const raw: string[] = ['content-type', contentType, 'content-length', String(Buffer.byteLength(body))];
  if (headers !== undefined) {
    for (const name in headers) {
      const value = headers[name];
      if (value !== undefined) raw.push(name, value);
    }
  }
  res.writeHead(status, raw);
  res.end(body);
}

/** Sends `body` as `application/json`. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: ResponseHeaders): void {
  writeResponse(res, status, JSON_TYPE, JSON.stringify(body) ?? 'null', headers);
}

/** Sends a problem document (RFC 9457). A `SwitchboardError` with `retryAfterMs` also gets `Retry-After`. */
export function sendProblem(res: ServerResponse, problem: SwitchboardError | ProblemDetails, headers?: ResponseHeaders): void {
  if (problem instanceof SwitchboardError) {
    const retryAfter = problem.retryAfterMs === undefined ? undefined : retryAfterHeader(problem.retryAfterMs);
    const merged = retryAfter === undefined ? headers : { 'retry-after': retryAfter, ...headers };
    writeResponse(res, problem.status, PROBLEM_TYPE, JSON.stringify(problem.toProblem()), merged);
    return;
  }
  writeResponse(res, problem.status, PROBLEM_TYPE, JSON.stringify(problem), headers);
}

/** `Retry-After` in whole seconds (at least 1), from milliseconds. */
export function retryAfterHeader(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** A problem response serialised once and reused: the hot error paths allocate nothing new. */
export interface StaticProblem {
  readonly status: number;
  readonly body: string;
  readonly headers: readonly string[];
}

export function staticProblem(code: ErrorCode, detail?: string, headers: Readonly<Record<string, string>> = {}): StaticProblem {
  const error = new SwitchboardError(code, detail === undefined ? {} : { detail });
  const body = JSON.stringify(error.toProblem());
  const raw = ['content-type', PROBLEM_TYPE, 'content-length', String(Buffer.byteLength(body))];
  for (const [name, value] of Object.entries(headers)) raw.push(name, value);
  return { status: error.status, body, headers: raw };
}

export function writeStatic(res: ServerResponse, problem: StaticProblem): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(problem.status, problem.headers as string[]);
  res.end(problem.body);
}
