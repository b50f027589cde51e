import { errorFromProblem, type ProblemDetails, SwitchboardError } from '@switchboard/core';
import { type Dispatcher, request } from 'undici';
import type { ReceiptDocument } from './receipts.js';

export interface FetchReceiptOptions {
  /**
   * The CloudEvents `source` the message was sent with — the sender's own service name. With the
   * MessageId it names the event; without it the receiver answers only while a single source used
   * the id, and `SB_CONFLICT` (409) once several did.
   */
  readonly source?: string;
  /** Path of the receipts route under the service's base URL. Default `/receipts/`. */
  readonly path?: string;
  /**
   * Wait until every group reached `processed` or `dead-lettered` (or `group` did), polling with
   * server-side long-polls of up to `pollSeconds`. Without it, the current state is returned.
   */
  readonly wait?: { readonly timeoutMs: number; readonly group?: string; readonly pollSeconds?: number };
  readonly signal?: AbortSignal;
  readonly dispatcher?: Dispatcher;
  /** Extra request headers (auth). */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The sender's side of receipts: asks the receiving service (`baseUrl`, where its HTTP server is
 * mounted) what became of `messageId` sent from `source` (`GET {path}{messageId}?source=`).
 * Returns the `ReceiptDocument`, or `undefined` when the receiver never received it (404
 * `SB_RECEIPT_NOT_FOUND`; with `wait`, still not after the timeout). Other failures throw the
 * `SwitchboardError` of the problem answered (e.g. `SB_CONFLICT` for an id several sources used,
 * asked without `source`).
 */
export async function fetchReceipt(
  baseUrl: string,
  messageId: string,
  options: FetchReceiptOptions = {},
): Promise<ReceiptDocument | undefined> {
  const path = options.path ?? '/receipts/';
  const url = `${baseUrl.replace(/\/$/, '')}${path.endsWith('/') ? path : `${path}/`}${encodeURIComponent(messageId)}`;
  const wait = options.wait;
  const deadline = wait === undefined ? 0 : Date.now() + wait.timeoutMs;
  let last: ReceiptDocument | undefined;
  for (;;) {
    const remaining = deadline - Date.now();
    const seconds = wait === undefined ? 0 : Math.max(0, Math.min(wait.pollSeconds ?? 5, Math.floor(remaining / 1000)));
    const query = new URLSearchParams();
    if (options.source !== undefined) query.set('source', options.source);
    if (seconds > 0) query.set('wait', String(seconds));
    if (wait?.group !== undefined) query.set('group', wait.group);
    const target = query.size > 0 ? `${url}?${query}` : url;
    const response = await request(target, {
      method: 'GET',
      headers: { accept: 'application/json', ...options.headers },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    });
    const text = await response.body.text();
    if (response.statusCode === 200) {
      last = JSON.parse(text) as ReceiptDocument;
      const settled = last.done && (wait?.group === undefined || last.groups.some((g) => g.group === wait.group));
      if (wait === undefined || settled) return last;
    } else if (response.statusCode === 404 && text.includes('SB_RECEIPT_NOT_FOUND')) {
      if (wait === undefined) return undefined;
    } else {
      throw problemError(text, response.statusCode);
    }
    if (Date.now() >= deadline) return last;
    if (seconds === 0) await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
  }
}

function problemError(text: string, status: number): SwitchboardError {
  try {
    const problem = JSON.parse(text) as ProblemDetails;
    if (typeof problem.code === 'string') return errorFromProblem(problem);
  } catch {
    // not a problem document
  }
  return new SwitchboardError('SB_BAD_GATEWAY', { detail: `the receipts endpoint answered ${status}` });
}
