import { SwitchboardError } from '@switchboard/core';
import { brokerErrors } from '@switchboard/core/kit';

/** The name of an AWS SDK error (`QueueDoesNotExist`, `ReceiptHandleIsInvalid`, ...), or `''`. */
export function awsErrorName(error: unknown): string {
  if (typeof error !== 'object' || error === null) return '';
  const { name, Code, code } = error as { name?: unknown; Code?: unknown; code?: unknown };
  if (typeof Code === 'string') return Code;
  if (typeof name === 'string' && name !== 'Error') return name;
  return typeof code === 'string' ? code : '';
}

function httpStatus(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Names AWS uses for "too big". */
const TOO_LARGE = /^(AWS\.SimpleQueueService\.)?(MessageTooLong|BatchRequestTooLong|RequestEntityTooLarge|EntityTooLarge)$/;

/** `QueueDoesNotExist` in every form the SDK reports it. */
export function isQueueMissing(error: unknown): boolean {
  const name = awsErrorName(error);
  return /QueueDoesNotExist|NonExistentQueue/.test(name);
}

export function isNotFound(error: unknown): boolean {
  const name = awsErrorName(error);
  return name === 'NotFound' || name === 'NoSuchKey' || name === 'NotFoundException' || httpStatus(error) === 404;
}

/** The receipt handle no longer names an in-flight receive (the message was received again, deleted, or its visibility ended). */
export function isHandleLost(code: string | undefined): boolean {
  return code !== undefined && /ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue/.test(code);
}

/**
 * Worth another try: throttling, server errors, network failures, timeouts. Client errors
 * (validation, access denied, missing resources) are not.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof SwitchboardError) return error.retryable;
  const name = awsErrorName(error);
  if (/Throttl|RequestThrottled|TooManyRequests|SlowDown|ServiceUnavailable|InternalError|InternalFailure|KmsThrottling/i.test(name)) {
    return true;
  }
  const status = httpStatus(error);
  if (status !== undefined) return status >= 500 || status === 429;
  const code = (error as { code?: unknown } | null)?.code;
  if (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|EHOSTUNREACH|UND_ERR_SOCKET)$/.test(code)
  ) {
    return true;
  }
  return /TimeoutError|RequestTimeout|socket hang up|ECONNREFUSED|ECONNRESET|connect/i.test(`${name} ${(error as Error)?.message ?? ''}`);
}

const errors = brokerErrors({
  engine: 'SNS/SQS',
  tooLarge: (error) => TOO_LARGE.test(awsErrorName(error)),
});

/** Maps whatever the AWS SDK threw to a registry error (a `SwitchboardError` passes through). */
export const toBrokerError = errors.toBrokerError;
export const closedError = errors.closedError;

/** `SB_CONFIG_INVALID` for topology that is missing or wrong in verify mode, or a refused configuration. */
export function configError(detail: string, cause?: unknown): SwitchboardError {
  return new SwitchboardError('SB_CONFIG_INVALID', { detail, ...(cause === undefined ? {} : { cause }) });
}
