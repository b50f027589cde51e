import { SwitchboardError } from '@switchboard/core';
import type { Middleware } from '../pipeline.js';
import type { RouteTable } from '../routes.js';

/**
 * Finds the handler for the event's `type` on its topic. A type the contract does not declare, or
 * that no handler takes, throws `SB_UNKNOWN_TYPE`: permanent, so the retry middleware dead-letters
 * it at once (with a receipt, since the event itself was read).
 */
export function route(routes: RouteTable): Middleware {
  return (next) => (message) => {
    const event = message.event;
    const found = routes.match(message.delivery.topic, event.type);
    if (found === undefined) {
      throw new SwitchboardError('SB_UNKNOWN_TYPE', {
        detail: `no handler for ${event.type} on ${message.delivery.topic} in group ${message.group}`,
      });
    }
    message.route = found;
    message.data = event.data;
    return next(message);
  };
}
