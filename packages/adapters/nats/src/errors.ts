import { isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { describeError } from '@switchboard/core/kit';

/** Maps whatever the NATS client threw to a registry error. */
export function toBrokerError(error: unknown, action: string): SwitchboardError {
  if (isSwitchboardError(error)) return error;
  const text = describeError(error);
  const name = error instanceof Error ? error.name : '';
  if (/max_payload|maximum payload|message size exceeds|exceeds maximum/i.test(text)) {
    return new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${action}: ${text}`, cause: error });
  }
  if (name === 'ClosedConnectionError' || name === 'DrainingConnectionError') {
    return new SwitchboardError('SB_CLOSED', { detail: `${action}: the NATS connection is closed`, cause: error });
  }
  return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `${action}: ${text}`, cause: error });
}

/** Errors worth retrying inside the publish deadline (timeouts, no responders, reconnects). */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (['TimeoutError', 'NoRespondersError', 'RequestError', 'ConnectionError'].includes(error.name)) return true;
  return /timeout|no responders|disconnect|connection/i.test(error.message);
}

export function closedError(what: string): SwitchboardError {
  return new SwitchboardError('SB_CLOSED', { detail: `the NATS broker is closed (${what})` });
}
