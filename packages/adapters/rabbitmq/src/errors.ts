import { isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { describeError } from '@switchboard/core/kit';

export function isTooLarge(error: unknown): boolean {
  return /larger than configured max size|max_message_size|Encoded field table|frame size/i.test(describeError(error));
}

export function toBrokerError(error: unknown, action: string): SwitchboardError {
  if (isSwitchboardError(error)) return error;
  const text = describeError(error);
  if (isTooLarge(error)) return new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${action}: ${text}`, cause: error });
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `${action}: ${text}`, cause: error });
}

export function closedError(what: string): SwitchboardError {
  return new SwitchboardError('SB_CLOSED', { detail: `the RabbitMQ broker is closed (${what})` });
}
