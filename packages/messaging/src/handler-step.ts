import type { AnyContract, OperationDefinition, ProblemDetails } from '@switchboard/core';
import {
  type HandlerMessage,
  OperationError,
  operationProblemType,
  runWithTrace,
  SwitchboardError,
  traceAsync,
  tracing,
} from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import { DeliveryContext, deliveryParent } from './context.js';
import { OperationFailure } from './middleware/retry.js';
import type { Inbound, Step } from './pipeline.js';

/**
 * The innermost step: runs the route's handler with the validated data. Operations get their
 * `HandlerContext` (`via: 'message'`), their output is checked against the contract, and a
 * declared `OperationError` becomes a problem document for the receipt. What the handler returns
 * is summarised (JSON, at most `resultLimit` characters) into the receipt's `result`.
 */
export function handlerStep(defaultTimeoutMs: number, resultLimit: number): Step {
  return async (message) => {
    const route = message.route!;
    const context = new DeliveryContext(message);
    let value: unknown;
    if (route.kind === 'operation') {
      value = await runOperation(message, context, defaultTimeoutMs);
    } else {
      value = await runWithTrace(context, route.invoke, message.data, context, () => context.operationContext(route.name, undefined));
    }
    const summary = summarize(value, resultLimit);
    return summary === undefined ? { kind: 'ack' } : { kind: 'ack', result: summary };
  };
}

/** The `switchboard:handler` context of an operation reached through a broker. */
function handlerContext(message: Inbound, service: string, operation: string, context: DeliveryContext): HandlerMessage {
  return {
    service,
    operation,
    via: 'message',
    // The handler's own context (what its calls and sends descend from), and what it continues: the
    // hop's transport header when the delivery has one, else the creation context.
    traceparent: context.traceparent,
    parentTraceparent: deliveryParent(message.delivery, message.event!, message.via).traceparent,
    route: undefined,
    tracestate: context.tracestate,
    idempotencyKey: undefined,
    jobId: undefined,
    messageId: message.event!.id,
    attempt: message.attempt,
    context,
  };
}

/**
 * Runs an operation route's handler with the validated input and checks its output against the
 * contract (`SB_INVALID_OUTPUT`); a declared `OperationError` is thrown as an `OperationFailure`
 * carrying its problem document. Shared by invoke (receipts) and request (replies).
 */
export async function runOperation(message: Inbound, context: DeliveryContext, defaultTimeoutMs: number): Promise<unknown> {
  const route = message.route!;
  const definition = route.contract.operations[route.name]!;
  let value: unknown;
  try {
    // The handler's context is the ambient trace of everything it sends or calls.
    const invoke = () =>
      runWithTrace(context, route.invoke, message.data, context, () =>
        context.operationContext(route.name, route.timeoutMs ?? defaultTimeoutMs),
      );
    value = tracing.handler.hasSubscribers
      ? await traceAsync(tracing.handler, handlerContext(message, route.contract.name, route.name, context), invoke)
      : await invoke();
  } catch (error) {
    throw operationFailure(route.contract, definition, error);
  }
  const checked = validate(definition.output, value);
  const result = checked instanceof Promise ? await checked : checked;
  if (!result.ok) {
    throw new SwitchboardError('SB_INVALID_OUTPUT', {
      detail: `output of operation ${route.name} does not match its schema`,
      errors: result.errors,
    });
  }
  return result.value;
}

function summarize(value: unknown, limit: number): string | undefined {
  if (value === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return undefined;
  }
  if (json === undefined) return undefined;
  return json.length <= limit ? json : JSON.stringify({ truncated: true, length: json.length });
}

/** A declared `OperationError` keeps its code, status and data; anything else is left to the retry policy. */
function operationFailure(contract: AnyContract, definition: OperationDefinition, error: unknown): unknown {
  if (!(error instanceof OperationError) || !Object.hasOwn(definition.errors, error.code)) return error;
  const declared = definition.errors[error.code]!;
  const problem: ProblemDetails = {
    type: operationProblemType(contract.name, error.code),
    title: declared.title ?? error.code,
    status: declared.status,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    code: error.code,
    ...(error.data === undefined ? {} : { data: error.data }),
    retryable: declared.retryable ?? false,
  };
  return new OperationFailure(problem, declared.retryable ?? false, error);
}
