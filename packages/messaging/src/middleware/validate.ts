import { SwitchboardError } from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import type { Middleware } from '../pipeline.js';

/**
 * Checks the data against the contract's schema and hands the schema's output to the handler.
 * A failure throws `SB_MESSAGE_INVALID` with the field errors: dead-lettered at once, never retried.
 * Payload-free events get `undefined`, whatever arrived.
 */
export function validateData(): Middleware {
  return (next) => async (message) => {
    const route = message.route!;
    if (route.schema === undefined) {
      message.data = undefined;
      return next(message);
    }
    const checked = validate(route.schema, message.data);
    const result = checked instanceof Promise ? await checked : checked;
    if (!result.ok) {
      throw new SwitchboardError('SB_MESSAGE_INVALID', {
        detail: `data of ${route.kind} ${route.name} of ${route.contract.name} does not match its schema`,
        errors: result.errors,
      });
    }
    message.data = result.value;
    return next(message);
  };
}
