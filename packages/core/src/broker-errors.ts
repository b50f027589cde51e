import { describeError, isSwitchboardError, SwitchboardError } from './errors.js';

export interface BrokerErrorRules {
  /** The engine's name as users know it, e.g. `RabbitMQ` (used in details). */
  readonly engine: string;
  /** The engine refused a message for its size: `SB_MESSAGE_TOO_LARGE`. */
  readonly tooLarge?: (error: unknown) => boolean;
  /** The client's connection was closed by us: `SB_CLOSED`. */
  readonly closed?: (error: unknown) => boolean;
}

export interface BrokerErrors {
  /** Maps whatever the engine's client threw to a registry error (a `SwitchboardError` passes through). */
  toBrokerError(error: unknown, action: string): SwitchboardError;
  /** `SB_CLOSED` for a call on a closed broker. */
  closedError(what: string): SwitchboardError;
}

/**
 * The error mapping of one engine's adapter, from its few engine-specific rules: too large →
 * `SB_MESSAGE_TOO_LARGE`, closed → `SB_CLOSED`, anything else → `SB_BROKER_UNAVAILABLE` (retryable),
 * with the client's message in `detail` and the original as `cause`.
 */
export function brokerErrors(rules: BrokerErrorRules): BrokerErrors {
  const { engine } = rules;
  return {
    toBrokerError(error, action) {
      if (isSwitchboardError(error)) return error;
      const text = describeError(error);
      if (rules.tooLarge?.(error) === true) {
        return new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${engine}: ${action}: ${text}`, cause: error });
      }
      if (rules.closed?.(error) === true) {
        return new SwitchboardError('SB_CLOSED', { detail: `${engine}: ${action}: the connection is closed`, cause: error });
      }
      return new SwitchboardError('SB_BROKER_UNAVAILABLE', { detail: `${engine}: ${action}: ${text}`, cause: error });
    },
    closedError(what) {
      return new SwitchboardError('SB_CLOSED', { detail: `the ${engine} broker is closed (${what})` });
    },
  };
}

/** Resolves after `ms` without keeping the process alive. */
export function idle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** `SB_MESSAGE_TOO_LARGE` unless `bytes` fits in `limit`: checked before a message goes to the engine. */
export function assertMessageSize(bytes: number, limit: number, what = 'the message'): void {
  if (bytes > limit) {
    throw new SwitchboardError('SB_MESSAGE_TOO_LARGE', { detail: `${what} is ${bytes} bytes, over the limit of ${limit} bytes` });
  }
}
