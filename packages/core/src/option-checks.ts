import { SwitchboardError } from './errors.js';

/**
 * An adapter option that must be a positive integer: `fallback` when it is left out, the value
 * when it is an integer from 1 to `max`, `SB_CONFIG_INVALID` (naming the option) otherwise.
 */
export function positiveInteger(value: number | undefined, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} must be an integer from 1 to ${max}, got ${value}` });
  }
  return value;
}
