import { SwitchboardError } from '@switchboard/core';
import type { HttpRoute } from '@switchboard/http';
import { sendJson } from '@switchboard/http';
import { outwardProblem } from './outward.js';
import type { Receipts } from './receipts.js';

export interface ReceiptsRouteOptions {
  /** Where it is served. Default `/receipts/`. */
  readonly path?: string;
  /**
   * With authentication: a principal holding this scope reads every receipt (an operator, a
   * dashboard); everyone else only those of the events it delivered. Default: none (nobody reads another's).
   */
  readonly readScope?: string;
}

/** Longest `?wait=` a receipts request may ask for, in seconds. */
const MAX_WAIT_SECONDS = 30;

/**
 * `GET {base}/receipts/{messageId}?source=S` on the receiving service's HTTP server (an extra route
 * of `createHttpService`). An event's identity is its source + id, so `source` names the event:
 * 200 with its `ReceiptDocument`; 404 `SB_RECEIPT_NOT_FOUND` when no group ever received it.
 * Without `source`: the event of the one source that used the MessageId, or 409 `SB_CONFLICT`
 * when several did (the detail says to pass `?source=`; the other sources are not named). An empty
 * `source` is 400. `?wait=N` (seconds, at most 30) long-polls until every group reached a final
 * state (or `&group=` did).
 */
export function receiptsRoute(receipts: Receipts, options: ReceiptsRouteOptions = {}): HttpRoute {
  const readScope = options.readScope;
  const base = options.path ?? '/receipts/';
  const prefix = base.endsWith('/') ? base : `${base}/`;
  return {
    methods: ['GET'],
    path: prefix,
    async handle(_req, res, context) {
      let messageId: string;
      try {
        messageId = decodeURIComponent(context.path.slice(prefix.length));
      } catch {
        throw new SwitchboardError('SB_BAD_REQUEST', { detail: 'malformed MessageId in the path' });
      }
      if (messageId === '' || messageId.includes('/'))
        throw new SwitchboardError('SB_NOT_FOUND', { detail: 'expected /receipts/{messageId}' });
      const query = new URLSearchParams(context.query);
      const waitSeconds = Number(query.get('wait') ?? '0');
      const group = query.get('group') ?? undefined;
      const source = query.get('source') ?? undefined;
      if (source === '') throw new SwitchboardError('SB_BAD_REQUEST', { detail: 'source must be a non-empty CloudEvents source' });
      // With authentication, a reader sees the receipts of the events it delivered; another's event is
      // a 404 like one never received (not a 403: whether it exists is the sender's business).
      const reader = context.service.auth === undefined ? undefined : context.authenticated;
      const privileged = reader !== undefined && readScope !== undefined && reader.scopes.includes(readScope);
      const visibility = reader === undefined || privileged ? {} : { visibleTo: reader.id };
      const bySource = { ...(source === undefined ? {} : { source }), ...visibility };
      const document =
        Number.isFinite(waitSeconds) && waitSeconds > 0
          ? await receipts.wait(messageId, {
              ...bySource,
              timeoutMs: Math.min(waitSeconds, MAX_WAIT_SECONDS) * 1000,
              ...(group === undefined ? {} : { group }),
              signal: context.service.signal,
            })
          : await receipts.get(messageId, bySource);
      if (document === undefined) {
        throw new SwitchboardError('SB_RECEIPT_NOT_FOUND', {
          detail: source === undefined ? `no receipt for ${messageId}` : `no receipt for ${messageId} from ${source}`,
        });
      }
      // The receipts API keeps the handler's own words for the service; the sender gets what it may know.
      const outward = {
        ...document,
        groups: document.groups.map((group) => (group.error === undefined ? group : { ...group, error: outwardProblem(group.error) })),
      };
      sendJson(res, 200, outward, { 'cache-control': 'no-store' });
    },
  };
}
