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
  /** How a delivery was settled: `ack`, `retry`, `dead-letter`, `filtered`, … */
  readonly outcome?: string;
  readonly attempt?: number;
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
  | 'call.request'
  | 'call.response'
  | 'handler.start'
  | 'handler.end'
  | 'job.submit'
  | 'job.poll'
  | 'job.state'
  | 'message.publish'
  | 'message.deliver'
  | 'message.settle'
  | 'claimcheck.put'
  | 'claimcheck.get'
  | 'dead-letter'
  | 'receipt'
  | 'other';

/** The pattern an event belongs to, from its kind and topic. */
export type Pattern = 'call' | 'job' | 'message' | 'event' | 'other';

export function patternOf(event: Pick<FlowEvent, 'kind' | 'topic' | 'via' | 'jobId'>): Pattern {
  switch (event.kind) {
    case 'call.request':
    case 'call.response':
      return 'call';
    case 'handler.start':
    case 'handler.end':
      if (event.via === 'job' || event.jobId !== undefined) return 'job';
      if (event.via === 'message') return 'message';
      return 'call';
    case 'job.submit':
    case 'job.poll':
    case 'job.state':
      return 'job';
    case 'claimcheck.put':
    case 'claimcheck.get':
      return 'event';
    case 'message.publish':
    case 'message.deliver':
    case 'message.settle':
    case 'dead-letter':
    case 'receipt':
      return event.topic?.endsWith('.events') ? 'event' : 'message';
    default:
      return 'other';
  }
}

/** The W3C trace id and span id of a `traceparent`, when it is well formed. */
export function parseTraceparent(value: unknown): { traceId: string; spanId: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}/.exec(value);
  if (match === null || match[1] === '00000000000000000000000000000000') return undefined;
  return { traceId: match[1] as string, spanId: match[2] as string };
}

/** The keys an event joins flows by, namespaced: `t:` trace id, `m:` MessageId, `j:` job id, `k:` Idempotency-Key. */
export function keysOf(event: FlowEvent): string[] {
  const keys: string[] = [];
  if (event.traceId !== undefined) keys.push(`t:${event.traceId}`);
  if (event.messageId !== undefined) keys.push(`m:${event.messageId}`);
  if (event.jobId !== undefined) keys.push(`j:${event.jobId}`);
  if (event.idempotencyKey !== undefined) keys.push(`k:${event.idempotencyKey}`);
  return keys;
}
