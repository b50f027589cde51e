import type { CloudEventsBinding } from '@switchboard/core';
import { decodeCloudEvent, SwitchboardError } from '@switchboard/core';
import type { Middleware } from '../pipeline.js';
import type { RouteTable } from '../routes.js';

/**
 * Reads the CloudEvent from the delivery's headers and body (binary or structured mode) and finds
 * its route. Bytes that are not a CloudEvent throw `SB_NOT_CLOUDEVENT` (or `SB_MALFORMED_JSON`,
 * `SB_UNSUPPORTED_MEDIA_TYPE`); a type the contract does not declare, or that no handler takes,
 * throws `SB_UNKNOWN_TYPE`. Both are permanent: the retry middleware dead-letters them at once.
 */
export function decode(binding: CloudEventsBinding, routes: RouteTable): Middleware {
  return (next) => (message) => {
    const event = decodeCloudEvent(message.delivery.headers, message.delivery.body, binding);
    message.event = event;
    const route = routes.match(message.delivery.topic, event.type);
    if (route === undefined) {
      throw new SwitchboardError('SB_UNKNOWN_TYPE', {
        detail: `no handler for ${event.type} on ${message.delivery.topic} in group ${message.group}`,
      });
    }
    message.route = route;
    message.data = event.data;
    return next(message);
  };
}
