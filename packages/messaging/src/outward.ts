import type { ProblemDetails } from '@switchboard/core';

/** What may be said of each failure that carries a handler's own words. */
const HIDDEN: Readonly<Record<string, string>> = {
  SB_HANDLER_FAILED: 'the handler failed; the event will be retried',
  SB_PERMANENT: 'the handler refused the event for good; it was dead-lettered',
};

/**
 * What the sender of an event may be told of a failure (the `/events` answer, `GET /receipts/{id}`):
 * the problem's type, title, status and code, and its detail only when Switchboard wrote it
 * (validation, claim check, store, a declared operation error) — never the message of a handler's
 * own exception (`SB_HANDLER_FAILED`) or of its `PermanentError` (`SB_PERMANENT`), which can carry
 * internal names and URLs. The dead-letter store and the receipts API keep the whole problem.
 */
export function outwardProblem(problem: ProblemDetails): ProblemDetails {
  const detail = HIDDEN[problem.code];
  if (detail === undefined) return problem;
  const { detail: _detail, ...rest } = problem;
  return { ...rest, detail };
}
