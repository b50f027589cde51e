import type { HandlerContext, OperationDefinition, ProblemDetails, StandardSchemaV1 } from '@switchboard/core';
import {
  errorTypeOf,
  type HandlerMessage,
  OperationError,
  operationProblemType,
  problemType,
  SwitchboardError,
  traceAsync,
  tracing,
} from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import type { OperationOutcome } from './types.js';

type AnyHandler = (input: unknown, context: HandlerContext) => unknown;

interface CompiledError {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly data: StandardSchemaV1 | undefined;
}

/** Everything about one operation that can be computed once, at service creation. */
export interface CompiledOperation {
  /** Contract name. */
  readonly service: string;
  readonly name: string;
  /** Its HTTP path (`{basePath}/ops/{name}`). */
  readonly path: string;
  readonly definition: OperationDefinition;
  readonly handler: AnyHandler;
  readonly errors: Readonly<Record<string, CompiledError>>;
  /** `detail` of its 400 validation problems. */
  readonly validationDetail: string;
  readonly handlerFailed: ProblemDetails;
  readonly invalidOutput: ProblemDetails;
}

export function compileOperation(
  contractName: string,
  name: string,
  definition: OperationDefinition,
  handler: unknown,
  basePath = '',
): CompiledOperation {
  if (typeof handler !== 'function') throw new TypeError(`No handler for operation "${name}" of contract "${contractName}"`);
  const errors: Record<string, CompiledError> = Object.create(null);
  for (const [code, declaration] of Object.entries(definition.errors)) {
    errors[code] = {
      type: operationProblemType(contractName, code),
      title: declaration.title ?? code,
      status: declaration.status,
      retryable: declaration.retryable ?? false,
      data: declaration.data,
    };
  }
  return {
    service: contractName,
    name,
    path: `${basePath}/ops/${name}`,
    definition,
    handler: handler as AnyHandler,
    errors,
    validationDetail: `Input of operation ${name} does not match its schema`,
    handlerFailed: new SwitchboardError('SB_HANDLER_FAILED', { detail: `Operation ${name} failed` }).toProblem(),
    invalidOutput: new SwitchboardError('SB_INVALID_OUTPUT', {
      detail: `Output of operation ${name} does not match its schema`,
    }).toProblem(),
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Runs the handler, validates what it returns and maps what it throws to a problem. Never
 * rejects. Traced on `switchboard:handler` when someone listens.
 */
export function invokeOperation(operation: CompiledOperation, input: unknown, context: HandlerContext): Promise<OperationOutcome> {
  if (!tracing.handler.hasSubscribers) return runOperation(operation, input, context);
  const message: HandlerMessage = {
    service: operation.service,
    operation: operation.name,
    via: context.via,
    traceparent: context.traceparent,
    parentTraceparent: context.via === 'http' ? context.headers?.traceparent : undefined,
    route: context.via === 'http' ? operation.path : undefined,
    tracestate: context.tracestate,
    idempotencyKey: context.idempotencyKey,
    jobId: context.jobId,
    messageId: context.messageId,
    attempt: 1,
    context,
  };
  return traceAsync(tracing.handler, message, () => runOperation(operation, input, context), endHandler);
}

function endHandler(message: HandlerMessage, outcome: OperationOutcome): void {
  if (outcome.ok) {
    message.status = 200;
    return;
  }
  message.outcome = 'error';
  message.status = outcome.problem.status;
  message.error = outcome.error;
  message.errorType = typeof outcome.problem.code === 'string' ? outcome.problem.code : errorTypeOf(outcome.error);
}

async function runOperation(operation: CompiledOperation, input: unknown, context: HandlerContext): Promise<OperationOutcome> {
  try {
    let value = operation.handler(input, context);
    if (isThenable(value)) value = await value;
    const checked = validate(operation.definition.output, value);
    const result = checked instanceof Promise ? await checked : checked;
    return result.ok
      ? { ok: true, value: result.value }
      : {
          ok: false,
          problem: operation.invalidOutput,
          error: new SwitchboardError('SB_INVALID_OUTPUT', { detail: operation.invalidOutput.detail as string, errors: result.errors }),
        };
  } catch (error) {
    return outcomeOfError(operation, error);
  }
}

/** Maps what a handler threw to the problem the caller sees. */
export async function outcomeOfError(operation: CompiledOperation, error: unknown): Promise<OperationOutcome> {
  if (error instanceof OperationError) {
    const declared = Object.hasOwn(operation.errors, error.code) ? operation.errors[error.code] : undefined;
    if (declared === undefined) return { ok: false, problem: operation.handlerFailed, error };
    let data: unknown = error.data;
    if (declared.data !== undefined) {
      const checked = validate(declared.data, data);
      const result = checked instanceof Promise ? await checked : checked;
      if (!result.ok) {
        const problem = new SwitchboardError('SB_INVALID_OUTPUT', {
          detail: `Data of error ${error.code} of operation ${operation.name} does not match its schema`,
        }).toProblem();
        return { ok: false, problem, error: new SwitchboardError('SB_INVALID_OUTPUT', { errors: result.errors, cause: error }) };
      }
      data = result.value;
    }
    const problem: ProblemDetails = {
      type: declared.type,
      title: declared.title,
      status: declared.status,
      ...(error.detail === undefined ? {} : { detail: error.detail }),
      code: error.code,
      ...(data === undefined ? {} : { data }),
      retryable: declared.retryable,
    };
    return { ok: false, problem, error };
  }
  if (error instanceof SwitchboardError) {
    const problem = thrownProblem(operation, error);
    return error.retryAfterMs === undefined
      ? { ok: false, problem, error }
      : { ok: false, problem, retryAfterMs: error.retryAfterMs, error };
  }
  return { ok: false, problem: operation.handlerFailed, error };
}

/**
 * The problem of a `SwitchboardError` a handler (or interceptor) let through: its code, status,
 * title and whether retrying helps, never its `detail`, field errors or extensions. Those are
 * messages of the code that raised it, often another service's answer or a driver's error with
 * internal URLs and addresses (`POST http://10.0.0.7/ops/charge: ECONNREFUSED`). A message meant
 * for the caller is a declared error (`OperationError`).
 */
function thrownProblem(operation: CompiledOperation, error: SwitchboardError): ProblemDetails {
  const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
  return {
    type: problemType(error.code),
    title: error.title,
    status,
    detail: `Operation ${operation.name} failed`,
    code: error.code,
    retryable: error.retryable,
  };
}
