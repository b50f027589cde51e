import { SwitchboardError } from '@switchboard/core';
import type { HttpRoute } from '@switchboard/http';
import { sendJson } from '@switchboard/http';
import type { Receipts } from './receipts.js';

/** Longest `?wait=` a receipts request may ask for, in seconds. */
const MAX_WAIT_SECONDS = 30;

/**
 * `GET {base}/receipts/{messageId}` on the receiving service's HTTP server (an extra route of
 * `createHttpService`). 200 with the `ReceiptDocument`; 404 `SB_RECEIPT_NOT_FOUND` when no group
 * ever received the MessageId. `?wait=N` (seconds, at most 30) long-polls until every group
 * reached a final state (or `&group=` did).
 */
export function receiptsRoute(receipts: Receipts, options: { readonly path?: string } = {}): HttpRoute {
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
      const document =
        Number.isFinite(waitSeconds) && waitSeconds > 0
          ? await receipts.wait(messageId, {
              timeoutMs: Math.min(waitSeconds, MAX_WAIT_SECONDS) * 1000,
              ...(group === undefined ? {} : { group }),
              signal: context.service.signal,
            })
          : await receipts.get(messageId);
      if (document === undefined) throw new SwitchboardError('SB_RECEIPT_NOT_FOUND', { detail: `no receipt for ${messageId}` });
      sendJson(res, 200, document, { 'cache-control': 'no-store' });
    },
  };
}
