import { SwitchboardError } from '@switchboard/core';
import type { Middleware } from '../pipeline.js';

/**
 * Gives the handler `timeoutMs` (or its operation's `timeoutMs`). Past it, the run's signal is
 * aborted and the step fails with `SB_HANDLER_TIMEOUT` (retryable): the message is nacked and
 * redelivered. JavaScript cannot stop a handler that ignores its signal; its late result is dropped.
 */
export function timeout(defaultMs: number): Middleware {
  return (next) => async (message) => {
    const ms = message.route?.timeoutMs ?? defaultMs;
    const controller = new AbortController();
    const outer = message.signal;
    const onOuterAbort = (): void => controller.abort(outer.reason);
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener('abort', onOuterAbort, { once: true });
    message.signal = controller.signal;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new SwitchboardError('SB_HANDLER_TIMEOUT', { detail: `the handler ran past ${ms} ms` });
        controller.abort(error);
        reject(error);
      }, ms);
    });
    try {
      return await Promise.race([next(message), expired]);
    } finally {
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuterAbort);
    }
  };
}
