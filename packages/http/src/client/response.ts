import type { ErrorDeclaration, FieldError, OperationDefinition, ProblemDetails } from '@switchboard/core';
import { errorFromProblem, errorRegistry, OperationError, SwitchboardError } from '@switchboard/core';
import { parseRetryAfter, validate } from '@switchboard/core/kit';
import type { Dispatcher } from 'undici';
import type { Failure } from './failure.js';
import { failure } from './failure.js';

export interface Success {
  readonly ok: true;
  readonly value: unknown;
}

/** Statuses that say "try again" whatever the body is. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function badGateway(status: number, detail: string, errors?: readonly FieldError[], cause?: unknown): Failure {
  const error = new SwitchboardError('SB_BAD_GATEWAY', {
    detail,
    extensions: { upstreamStatus: status },
    ...(errors === undefined ? {} : { errors }),
    ...(cause === undefined ? {} : { cause }),
  });
  return failure(error, RETRY_STATUSES.has(status), status >= 500 || status < 400 ? 'fault' : 'up');
}

function isProblem(value: unknown): value is ProblemDetails {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'string';
}

async function declaredError(
  operation: string,
  declaration: ErrorDeclaration,
  problem: ProblemDetails,
  status: number,
  validateData: boolean,
  retryAfterMs: number | undefined,
): Promise<Failure> {
  let data: unknown = problem.data;
  if (validateData && declaration.data !== undefined) {
    const checked = await validate(declaration.data, data);
    if (!checked.ok) {
      return badGateway(status, `Data of error ${problem.code} of operation ${operation} does not match its schema`, checked.errors);
    }
    data = checked.value;
  }
  const error = new OperationError(problem.code, {
    data,
    status,
    ...(typeof problem.detail === 'string' ? { detail: problem.detail } : {}),
  });
  return failure(error, declaration.retryable === true, 'up', retryAfterMs);
}

/**
 * Reads an upstream answer once and turns it into the operation's output, one of its declared
 * errors, a rebuilt `SwitchboardError`, or `SB_BAD_GATEWAY` when it is not a Switchboard answer.
 * Errors while reading the body propagate to the caller, which maps them like send errors.
 */
export async function decodeResponse(
  response: Dispatcher.ResponseData,
  operationName: string,
  definition: OperationDefinition,
  validateOutput: boolean,
): Promise<Success | Failure> {
  const { statusCode: status, headers, body } = response;
  const type = header(headers['content-type']);
  if (type === undefined || !JSON_TYPE.test(type)) {
    await body.dump();
    return badGateway(status, `Upstream answered ${status} with ${type === undefined ? 'no content type' : `content type ${type}`}`);
  }
  const text = await body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    return badGateway(status, `Upstream answered ${status} with a body that is not valid JSON`, undefined, cause);
  }
  if (status >= 200 && status < 300) {
    if (!validateOutput) return { ok: true, value: json };
    const checked = await validate(definition.output, json);
    if (checked.ok) return { ok: true, value: checked.value };
    return badGateway(status, `Output of operation ${operationName} does not match its schema`, checked.errors);
  }
  if (!isProblem(json)) return badGateway(status, `Upstream answered ${status} with JSON that is not a problem document`);
  const retryAfterMs = parseRetryAfter(header(headers['retry-after']));
  const declaration = Object.hasOwn(definition.errors, json.code) ? definition.errors[json.code] : undefined;
  if (declaration !== undefined) return declaredError(operationName, declaration, json, status, validateOutput, retryAfterMs);
  // A code outside the registry (another service's own) is kept as `upstreamCode`.
  const problem = json.code in errorRegistry ? { ...json, status } : { ...json, status, upstreamCode: json.code };
  const error = errorFromProblem(problem, retryAfterMs);
  return failure(error, RETRY_STATUSES.has(status) || json.retryable === true, status >= 500 ? 'fault' : 'up', retryAfterMs);
}

/**
 * What an upstream answer means for retrying and for the circuit breaker, by the same rules as
 * `decodeResponse`, from the status, headers and (for answers other than 2xx) the whole body. The
 * transport's retry and breaker interceptors act on it before the body reaches the caller.
 */
export function judgeResponse(
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: Buffer | undefined,
  definition: OperationDefinition,
): { readonly retry: boolean; readonly health: 'up' | 'fault'; readonly retryAfterMs: number | undefined } {
  const gateway = {
    retry: RETRY_STATUSES.has(status),
    health: status >= 500 || status < 400 ? 'fault' : 'up',
    retryAfterMs: undefined,
  } as const;
  const type = header(headers['content-type']);
  if (type === undefined || !JSON_TYPE.test(type)) return gateway;
  if (status >= 200 && status < 300) return { retry: false, health: 'up', retryAfterMs: undefined };
  const retryAfterMs = parseRetryAfter(header(headers['retry-after']));
  if (body === undefined) return { retry: RETRY_STATUSES.has(status), health: status >= 500 ? 'fault' : 'up', retryAfterMs };
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return gateway;
  }
  if (!isProblem(json)) return gateway;
  const declaration = Object.hasOwn(definition.errors, json.code) ? definition.errors[json.code] : undefined;
  if (declaration !== undefined) return { retry: declaration.retryable === true, health: 'up', retryAfterMs };
  return { retry: RETRY_STATUSES.has(status) || json.retryable === true, health: status >= 500 ? 'fault' : 'up', retryAfterMs };
}
