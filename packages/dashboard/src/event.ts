/**
 * One thing a service observed, as the recorder keeps it: the diagnostics channel it came from,
 * turned into a flat record with the ids that join it to a flow (trace id, MessageId, job id,
 * Idempotency-Key). Payloads are not kept unless the recorder is told not to redact.
 */
export interface FlowEvent {
  /** Position in the recorder that first recorded it (per service, increasing). */
  readonly seq: number;
  /** Milliseconds since the Unix epoch. */
  readonly at: number;
  /** The service that observed it. */
  readonly service: string;
  readonly kind: FlowEventKind;
  /** The channel name, e.g. `switchboard:client:response`. */
  readonly channel: string;
  readonly operation?: string;
  readonly topic?: string;
  /** CloudEvents `type`. */
  readonly type?: string;
  /** Consumer group (deliveries and settlements). */
  readonly group?: string;
  /** CloudEvents `source` of a delivered message. */
  readonly source?: string;
  /** The contract named by a handler, call or job (the callee's). */
  readonly contract?: string;
  /** The broker (`sqlite`, `nats`, …) or blob store. */
  readonly system?: string;
  /** `send`, `invoke` or `emit` for a publish. */
  readonly sendKind?: string;
  /** How a handler was reached: `http`, `job`, `message`, … */
  readonly via?: string;
  readonly url?: string;
  readonly traceId?: string;
  readonly spanId?: string;
  readonly messageId?: string;
  readonly jobId?: string;
  readonly idempotencyKey?: string;
  /** HTTP status of a call, or a job's status. */
  readonly status?: number | string;
  /** `ok` or `error` for what took time; for a delivery its settlement: `ack`, `retry`, `dead-letter`, `filtered`, `dropped`. */
  readonly outcome?: string;
  readonly attempt?: number;
  /** Attempts a call made, or a job took. */
  readonly attempts?: number;
  /** A job's state as a poll read it, or as a run left it. */
  readonly jobStatus?: string;
  /** Polls of a job by this client so far. */
  readonly poll?: number;
  readonly retryAfterMs?: number;
  /** Dead-letter reason, or why a delivery was retried. */
  readonly reason?: string;
  readonly durationMs?: number;
  /** Claim-check reference (`dataref`). */
  readonly dataref?: string;
  readonly bytes?: number;
  readonly error?: EventError;
  /** The payload, only when the recorder was created with `redact: false`. */
  readonly data?: unknown;
}

export interface EventError {
  readonly code?: string;
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
}

export type FlowEventKind =
  /** A typed client call started (`switchboard:call` start). */
  | 'call.request'
  /** It ended: status, latency, attempts (`switchboard:call` asyncEnd). */
  | 'call.response'
  /** One HTTP request of a call (`switchboard:call:attempt` asyncEnd). */
  | 'call.attempt'
  | 'handler.start'
  | 'handler.end'
  /** A job submitted: 202 and its job id (`switchboard:job:submit`). */
  | 'job.submit'
  /** One read of the status monitor (`switchboard:job:poll`). */
  | 'job.poll'
  /** One run of the job's handler on the server (`switchboard:job:run`). */
  | 'job.run'
  | 'job.state'
  | 'job.complete'
  /** Handed to the broker and confirmed (`switchboard:send`). */
  | 'message.publish'
  /** One delivery through the consumer pipeline: attempt n, and what was decided (`switchboard:process`). */
  | 'message.deliver'
  /** The decision sent to the broker (`switchboard:settle`). */
  | 'message.settle'
  | 'claimcheck.put'
  | 'claimcheck.get'
  /** A dead letter was stored (`switchboard:dlq`). */
  | 'dead-letter'
  | 'other';

/** The pattern an event belongs to, from its kind and topic. */
export type Pattern = 'call' | 'job' | 'message' | 'event' | 'other';

export function patternOf(event: Pick<FlowEvent, 'kind' | 'topic' | 'via' | 'jobId'>): Pattern {
  switch (event.kind) {
    case 'call.request':
    case 'call.response':
    case 'call.attempt':
      return 'call';
    case 'handler.start':
    case 'handler.end':
      if (event.via === 'job' || event.jobId !== undefined) return 'job';
      if (event.via === 'message') return 'message';
      return 'call';
    case 'job.submit':
    case 'job.poll':
    case 'job.run':
    case 'job.state':
    case 'job.complete':
      return 'job';
    case 'claimcheck.put':
    case 'claimcheck.get':
      return 'event';
    case 'message.publish':
    case 'message.deliver':
    case 'message.settle':
    case 'dead-letter':
      return event.topic?.endsWith('.events') ? 'event' : 'message';
    default:
      return 'other';
  }
}

/** The W3C trace id and span id of a `traceparent`, when it is well formed. */
export function parseTraceparent(value: unknown): { traceId: string; spanId: string } | undefined {
  // `vv-<32 hex>-<16 hex>-ff`, anything after it ignored (a later version may add fields).
  if (typeof value !== 'string' || !TRACEPARENT.test(value) || value.startsWith(ZERO_TRACE_ID, 3)) return undefined;
  return { traceId: value.slice(3, 35), spanId: value.slice(36, 52) };
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
const ZERO_TRACE_ID = '00000000000000000000000000000000';

/** The keys an event joins flows by, namespaced: `t:` trace id, `m:` MessageId, `j:` job id, `k:` Idempotency-Key, `d:` claim-check reference. */
export function keysOf(event: FlowEvent): string[] {
  const keys: string[] = [];
  if (event.traceId !== undefined) keys.push(`t:${event.traceId}`);
  if (event.messageId !== undefined) keys.push(`m:${event.messageId}`);
  if (event.jobId !== undefined) keys.push(`j:${event.jobId}`);
  if (event.idempotencyKey !== undefined) keys.push(`k:${event.idempotencyKey}`);
  if (event.dataref !== undefined) keys.push(`d:${event.dataref}`);
  return keys;
}

/**
 * What a claim-check fetch (`claimcheck.get`) found. The fetch verifies the bytes against the
 * event's `datahash` (SHA-256, and the size when `datasize` is given) before it ends, so a fetch
 * that ended `ok` is `verified`; one that failed is a `mismatch` (`SB_CLAIM_CHECK_HASH_MISMATCH`),
 * `missing` (`SB_CLAIM_CHECK_MISSING`: no blob under that reference), `unverified` (an attachment's
 * stream closed before its end, `SB_CLAIM_CHECK_UNVERIFIED`) or `failed` (the store failed).
 * `undefined` for any other event.
 */
export type ClaimCheckVerdict = 'verified' | 'mismatch' | 'missing' | 'unverified' | 'failed';

export function claimCheckVerdict(event: Pick<FlowEvent, 'kind' | 'outcome' | 'error'>): ClaimCheckVerdict | undefined {
  if (event.kind !== 'claimcheck.get') return undefined;
  if (event.outcome === 'ok' && event.error === undefined) return 'verified';
  if (event.error?.code === 'SB_CLAIM_CHECK_HASH_MISMATCH') return 'mismatch';
  if (event.error?.code === 'SB_CLAIM_CHECK_MISSING') return 'missing';
  if (event.error?.code === 'SB_CLAIM_CHECK_UNVERIFIED') return 'unverified';
  return 'failed';
}
