import type { AnyContract, OperationErrorCode, OperationName } from '@switchboard/core';
import { OperationError } from '@switchboard/core';
import type { DeclaredError } from './types.js';

/**
 * Narrows `error` to an error that `operation` of `contract` declares; with `code`, to that one
 * error, whose `data` then has the declared type.
 *
 * ```ts
 * if (isDeclaredError(error, contract, 'save', 'NameTaken')) error.data.suggestion;
 * ```
 */
export function isDeclaredError<
  C extends AnyContract,
  K extends OperationName<C>,
  E extends OperationErrorCode<C, K> = OperationErrorCode<C, K>,
>(error: unknown, contract: C, operation: K, code?: E): error is DeclaredError<C, K, E> {
  if (!(error instanceof OperationError)) return false;
  if (code !== undefined && error.code !== code) return false;
  const declared = contract.operations[operation]?.errors;
  return declared !== undefined && Object.hasOwn(declared, error.code);
}
