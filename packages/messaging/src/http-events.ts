import type { CloudEvent, ProblemDetails } from '@switchboard/core';
import { cloudEventFromHttp, SwitchboardError } from '@switchboard/core';
import type { HttpRoute } from '@switchboard/http';
import { checkJsonDepth, isJsonMediaType, retryAfterHeader, sendJson, sendProblem } from '@switchboard/http';
import { outwardProblem } from './outward.js';
import type { Outcome } from './pipeline.js';

/** What became of one event received over HTTP. */
export interface EventResult {
  readonly id: string;
  readonly status: 'processed' | 'duplicate' | 'filtered' | 'retry' | 'dead-lettered';
  readonly retryAfterMs?: number;
  readonly error?: ProblemDetails;
}

/** A retry with no failure of its own: another request is processing the same event right now. */
const BEING_PROCESSED = new SwitchboardError('SB_OVERLOADED', { detail: 'the event is being processed; retry later' }).toProblem();

function toResult(id: string, outcome: Outcome): EventResult {
  switch (outcome.kind) {
    case 'ack':
      return { id, status: outcome.skipped === undefined ? 'processed' : outcome.skipped === 'filtered' ? 'filtered' : 'duplicate' };
    case 'retry':
      return {
        id,
        status: 'retry',
        retryAfterMs: outcome.delayMs,
        ...(outcome.error === undefined ? {} : { error: outwardProblem(outcome.error) }),
      };
    case 'dead-letter':
      return { id, status: 'dead-lettered', error: outwardProblem(outcome.error) };
  }
}

/**
 * `POST {base}/events`: the CloudEvents HTTP protocol binding (binary, structured and batched
 * mode), decoded with the core HTTP helpers and dispatched through the consumer's pipeline (inbox,
 * retries, dead letters, receipts).
 *
 * - one event handled (or a duplicate): `204 No Content`
 * - one event to retry later: `503` with the problem and `Retry-After`
 * - one event dead-lettered: its problem and status (400 for a schema failure or unknown type)
 * - a batch: `200` with `{ results: [{ id, status, retryAfterMs?, error? }] }`
 * - 413 over the body limit, 415 unsupported media type, 400 malformed, nested too deep or not a CloudEvent
 * - 403 `SB_SIGNATURE_INVALID` when signing is configured and an event's signature is missing or
 *   does not verify (in a batch: the whole batch, before any of it runs)
 */
export function cloudEventsRoute(
  receive: (event: CloudEvent, sender?: string) => Promise<Outcome>,
  options: { readonly path?: string; readonly scopes?: readonly string[]; readonly verify?: (event: CloudEvent) => void } = {},
): HttpRoute {
  const verify = options.verify;
  return {
    methods: ['POST'],
    path: options.path ?? '/events',
    ...(options.scopes === undefined ? {} : { scopes: options.scopes }),
    async handle(req, res, context) {
      const body = await context.readBody();
      // The same nesting bound as every JSON body the HTTP layer parses (400 SB_JSON_TOO_DEEP).
      if (isJsonMediaType(req.headers['content-type'])) checkJsonDepth(body, context.maxJsonDepth);
      const decoded = cloudEventFromHttp(req.headers, body);
      if (decoded.mode === 'batch') {
        // Every signature first: a batch with one forged event is refused whole (403), nothing of it run.
        if (verify !== undefined) for (const event of decoded.events) verify(event);
        const results: EventResult[] = [];
        for (const event of decoded.events) results.push(toResult(event.id, await receive(event, context.principal)));
        sendJson(res, 200, { results });
        return;
      }
      const result = toResult(decoded.event.id, await receive(decoded.event, context.principal));
      switch (result.status) {
        case 'processed':
        case 'duplicate':
        case 'filtered':
          res.writeHead(204).end();
          return;
        case 'retry': {
          const problem: ProblemDetails = result.error ?? BEING_PROCESSED;
          sendProblem(res, { ...problem, status: 503 }, { 'retry-after': retryAfterHeader(result.retryAfterMs ?? 1000) });
          return;
        }
        case 'dead-lettered': {
          const problem = result.error!;
          sendProblem(res, { ...problem, status: problem.status >= 400 && problem.status < 600 ? problem.status : 500 });
          return;
        }
      }
    },
  };
}
