import {
  currentTrace,
  errorFromProblem,
  normalizeTracestate,
  type ProblemDetails,
  parseTraceparent,
  SwitchboardError,
} from '@switchboard/core';
import { newTraceId } from '@switchboard/core/kit';
import { type CallPolicy, createTransport, type Transport } from '@switchboard/http';
import type { Dispatcher } from 'undici';
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
  /** Extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Bearer token for every request (`Authorization: Bearer <token>`). */
  readonly auth?: () => Promise<string | undefined>;
  /** W3C `traceparent` of the caller: every request continues its trace with a new span id. */
  readonly traceparent?: string;
  /** Sent with every request when `traceparent` is valid (normalized first). */
  readonly tracestate?: string;
}

/** One shared transport for calls that bring no dispatcher of their own (an undici `Agent`, kept alive). */
let shared: Transport | undefined;

function transportFor(options: FetchReceiptOptions): { readonly transport: Transport; readonly owned: boolean } {
  if (options.dispatcher === undefined && options.auth === undefined) {
    shared ??= createTransport({ connections: 16 });
    return { transport: shared, owned: false };
  }
  return {
    transport: createTransport({
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      ...(options.auth === undefined ? {} : { auth: options.auth }),
    }),
    owned: true,
  };
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
  const { transport, owned } = transportFor(options);
  try {
    return await poll(transport, baseUrl, messageId, options);
  } finally {
    if (owned) await transport.close();
  }
}

async function poll(
  transport: Transport,
  baseUrl: string,
  messageId: string,
  options: FetchReceiptOptions,
): Promise<ReceiptDocument | undefined> {
  const path = options.path ?? '/receipts/';
  const url = `${baseUrl.replace(/\/$/, '')}${path.endsWith('/') ? path : `${path}/`}${encodeURIComponent(messageId)}`;
  const wait = options.wait;
  const deadline = wait === undefined ? 0 : Date.now() + wait.timeoutMs;
  let last: ReceiptDocument | undefined;
  const ambient = options.traceparent === undefined ? currentTrace() : undefined;
  const trace =
    ambient === undefined ? traceOfCaller(options.traceparent, options.tracestate) : traceOfCaller(ambient.traceparent, ambient.tracestate);
  for (;;) {
    const remaining = deadline - Date.now();
    const seconds = wait === undefined ? 0 : Math.max(0, Math.min(wait.pollSeconds ?? 5, Math.floor(remaining / 1000)));
    const query = new URLSearchParams();
    if (options.source !== undefined) query.set('source', options.source);
    if (seconds > 0) query.set('wait', String(seconds));
    if (wait?.group !== undefined) query.set('group', wait.group);
    const target = new URL(query.size > 0 ? `${url}?${query}` : url);
    const policy: CallPolicy = { trace };
    const response = await transport.dispatcher.request({
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: 'GET',
      headers: { accept: 'application/json', ...options.headers },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      switchboard: policy,
    } as Dispatcher.RequestOptions);
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

/** The caller's trace, or a new one (the transport gives every request its own span). */
function traceOfCaller(
  traceparent: string | undefined,
  tracestate: string | undefined,
): { traceId: string; flags: string; continued: boolean; tracestate: string | undefined } {
  const parsed = parseTraceparent(traceparent);
  return parsed === undefined
    ? { traceId: newTraceId(), flags: '03', continued: false, tracestate: undefined }
    : { traceId: parsed.traceId, flags: parsed.flags, continued: true, tracestate: normalizeTracestate(tracestate) };
}
