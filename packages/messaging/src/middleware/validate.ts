import type { FieldError } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { validate } from '@switchboard/core/kit';
import type { Middleware } from '../pipeline.js';
import type { Route } from '../routes.js';

/**
 * Checks the data against the contract's schema and hands the schema's output to the handler.
 * A failure throws `SB_MESSAGE_INVALID` with the field errors: dead-lettered at once, never retried.
 * Payload-free events get `undefined`, whatever arrived.
 */
export function validateData(): Middleware {
  return (next) => (message) => {
    const route = message.route!;
    if (route.schema === undefined) {
      message.data = undefined;
      return next(message);
    }
    const checked = validate(route.schema, message.data);
    // A schema that validates synchronously costs no promise of its own.
    if (checked instanceof Promise) {
      return checked.then((result) => {
        if (!result.ok) throw invalid(route, result.errors);
        message.data = result.value;
        return next(message);
      });
    }
    if (!checked.ok) return Promise.reject(invalid(route, checked.errors));
    message.data = checked.value;
    return next(message);
  };
}

function invalid(route: Route, errors: readonly FieldError[]): SwitchboardError {
  return new SwitchboardError('SB_MESSAGE_INVALID', {
    detail: `data of ${route.kind} ${route.name} of ${route.contract.name} does not match its schema`,
    errors,
  });
}
