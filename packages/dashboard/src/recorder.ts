import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { type EventError, type FlowEvent, type FlowEventKind, parseTraceparent } from './event.js';

/** Default bounds of the ring buffer: whichever is reached first evicts the oldest events. */
export const DEFAULT_CAPACITY = 100_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * The channels the recorder listens to, and the kind of event each becomes. A channel that no
 * code publishes yet costs nothing; names starting `switchboard:` that are not listed can be added
 * with the `channels` option and are classified by their name.
 */
export const RECORDED_CHANNELS: Readonly<Record<string, FlowEventKind>> = {
  'switchboard:client:request': 'call.request',
  'switchboard:client:response': 'call.response',
  'switchboard:handler:start': 'handler.start',
  'switchboard:handler:end': 'handler.end',
  'switchboard:job:submit': 'job.submit',
  'switchboard:job:poll': 'job.poll',
  'switchboard:job:state': 'job.state',
  'switchboard:message:publish': 'message.publish',
  'switchboard:message:deliver': 'message.deliver',
  'switchboard:message:settle': 'message.settle',
  'switchboard:claimcheck:put': 'claimcheck.put',
  'switchboard:claimcheck:get': 'claimcheck.get',
  'switchboard:message:dead-letter': 'dead-letter',
  'switchboard:receipt': 'receipt',
};

export interface RecorderOptions {
  /** The service's name: the swimlane its events are drawn in. */
  readonly service: string;
  /** Most events kept. Default 100 000. */
  readonly capacity?: number;
  /** Most bytes kept, measured as the length of each event's JSON. Default 64 MiB. */
  readonly maxBytes?: number;
  /**
   * Payloads (`data`, `input`, `result` of a channel message) are dropped unless this is `false`;
   * a function gets each event before it is kept and returns what to keep. Ids, names, statuses,
   * timings and error codes are always kept. Default `true`.
   */
  readonly redact?: boolean | ((event: FlowEvent) => FlowEvent);
  /** More channels to listen to, with the kind each becomes. */
  readonly channels?: Readonly<Record<string, FlowEventKind>>;
  /**
   * Keep events in a SQLite file too (better-sqlite3 must be installed): a restarted service
   * starts with its last `capacity` events, and older ones can be read with `history`.
   */
  readonly retention?: { readonly path: string; readonly maxAgeMs?: number };
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface RecorderStats {
  readonly count: number;
  readonly bytes: number;
  readonly capacity: number;
  readonly maxBytes: number;
  readonly recorded: number;
  readonly evicted: number;
  readonly lastSeq: number;
}

export interface FlowRecorder {
  readonly service: string;
  /** Events with `seq > since` (oldest first), at most `limit` (default 1000). */
  events(options?: { readonly since?: number; readonly limit?: number }): FlowEvent[];
  /** Calls `listener` with every event recorded from now on; returns the unsubscribe function. */
  subscribe(listener: (event: FlowEvent) => void): () => void;
  /** Records an event that did not come from a channel (the channel name is `record`). */
  record(event: Omit<FlowEvent, 'seq' | 'at' | 'service' | 'channel'> & { readonly at?: number; readonly channel?: string }): FlowEvent;
  /** Events kept in the retention file at or after `from` (ms), oldest first; `[]` without retention. */
  history(options: { readonly from?: number; readonly to?: number; readonly limit?: number }): FlowEvent[];
  stats(): RecorderStats;
  /** Stops listening and closes the retention file. */
  close(): void;
}

type Payload = Record<string, unknown>;

/**
 * Starts recording what this process publishes on Switchboard's diagnostics channels into a
 * bounded ring buffer (`capacity` events and `maxBytes`, whichever is reached first).
 */
export function createFlowRecorder(options: RecorderOptions): FlowRecorder {
  const capacity = Math.max(1, options.capacity ?? DEFAULT_CAPACITY);
  const maxBytes = Math.max(1024, options.maxBytes ?? DEFAULT_MAX_BYTES);
  const now = options.now ?? Date.now;
  const redact = options.redact ?? true;
  const buffer: (FlowEvent | undefined)[] = new Array(capacity);
  const sizes = new Uint32Array(capacity);
  let head = 0; // index of the oldest event
  let count = 0;
  let bytes = 0;
  let seq = 0;
  let recorded = 0;
  let evicted = 0;
  const listeners = new Set<(event: FlowEvent) => void>();
  /** The group of the delivery each MessageId is being handled in (settlements do not carry it). */
  const delivering = new Map<string, string>();
  const retention = options.retention === undefined ? undefined : openRetention(options.retention, now);

  const evictOldest = () => {
    bytes -= sizes[head] as number;
    buffer[head] = undefined;
    head = (head + 1) % capacity;
    count--;
    evicted++;
  };

  const keep = (event: FlowEvent): FlowEvent => {
    const size = JSON.stringify(event).length;
    while (count > 0 && (count >= capacity || bytes + size > maxBytes)) evictOldest();
    const index = (head + count) % capacity;
    buffer[index] = event;
    sizes[index] = size;
    count++;
    bytes += size;
    recorded++;
    return event;
  };

  const publish = (event: FlowEvent) => {
    keep(event);
    retention?.write(event);
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own; recording goes on.
      }
    }
  };

  const finish = (draft: Omit<FlowEvent, 'seq'>): FlowEvent | undefined => {
    let event: FlowEvent = { seq: ++seq, ...draft };
    if (typeof redact === 'function') {
      try {
        event = { ...redact(event), seq: event.seq };
      } catch {
        return undefined;
      }
    }
    return event;
  };

  const onMessage = (kind: FlowEventKind, channel: string) => (message: unknown) => {
    if (typeof message !== 'object' || message === null) return;
    const draft = normalise(message as Payload, kind, channel, options.service, now(), redact === false);
    if (draft.kind === 'message.deliver' && draft.messageId !== undefined && draft.group !== undefined) {
      if (delivering.size > 10_000) delivering.clear();
      delivering.set(draft.messageId, draft.group);
    } else if (draft.kind === 'message.settle' && draft.messageId !== undefined && draft.group === undefined) {
      const group = delivering.get(draft.messageId);
      if (group !== undefined) (draft as { group?: string }).group = group;
      delivering.delete(draft.messageId);
    }
    const event = finish(draft);
    if (event !== undefined) publish(event);
  };

  const subscriptions: [string, (message: unknown) => void][] = [];
  for (const [channel, kind] of Object.entries({ ...RECORDED_CHANNELS, ...options.channels })) {
    const handler = onMessage(kind, channel);
    diagnosticsChannel.subscribe(channel, handler);
    subscriptions.push([channel, handler]);
  }

  if (retention !== undefined) {
    for (const event of retention.newest(capacity, options.service)) {
      keep(event);
      seq = Math.max(seq, event.seq);
    }
    recorded = 0;
  }

  return {
    service: options.service,
    events({ since = 0, limit = 1000 } = {}) {
      const out: FlowEvent[] = [];
      // Binary search for the first event with seq > since (seq increases along the buffer).
      let lo = 0;
      let hi = count;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((buffer[(head + mid) % capacity] as FlowEvent).seq <= since) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < count && out.length < limit; i++) out.push(buffer[(head + i) % capacity] as FlowEvent);
      return out;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    record(input) {
      const { at, channel, ...rest } = input;
      const event = finish({ ...rest, at: at ?? now(), service: options.service, channel: channel ?? 'record' });
      if (event === undefined) throw new Error('the redact function failed on this event');
      publish(event);
      return event;
    },
    history(query) {
      return retention?.range(query) ?? [];
    },
    stats: () => ({ count, bytes, capacity, maxBytes, recorded, evicted, lastSeq: seq }),
    close() {
      for (const [channel, handler] of subscriptions) diagnosticsChannel.unsubscribe(channel, handler);
      subscriptions.length = 0;
      listeners.clear();
      retention?.close();
    },
  };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

function normalise(p: Payload, kind: FlowEventKind, channel: string, service: string, at: number, keepData: boolean): Omit<FlowEvent, 'seq'> {
  const request = (typeof p.request === 'object' && p.request !== null ? p.request : {}) as Payload;
  const trace = parseTraceparent(p.traceparent ?? request.traceparent);
  const out: Record<string, unknown> = { at, service, kind, channel };
  const set = (key: keyof FlowEvent, value: unknown) => {
    if (value !== undefined) out[key] = value;
  };
  set('operation', str(p.operation) ?? str(request.operation));
  set('topic', str(p.topic));
  set('type', str(p.type));
  set('group', str(p.group));
  set('source', str(p.source));
  set('via', str(p.via) ?? str(request.via));
  set('url', str(p.url));
  set('traceId', trace?.traceId);
  set('spanId', trace?.spanId);
  set('messageId', str(p.messageId) ?? str(request.messageId));
  set('jobId', str(p.jobId) ?? str(request.jobId));
  set('idempotencyKey', str(p.idempotencyKey) ?? str(request.idempotencyKey));
  set('status', num(p.status) ?? str(p.status));
  set('outcome', str(p.outcome) ?? str(p.reason));
  set('attempt', num(p.attempt));
  set('durationMs', num(p.durationMs) === undefined ? undefined : Math.round((p.durationMs as number) * 1000) / 1000);
  set('dataref', str(p.dataref));
  set('bytes', num(p.bytes) ?? num(p.size));
  set('error', errorOf(p.error));
  if (keepData) set('data', p.data ?? p.input ?? p.result);
  return out as unknown as Omit<FlowEvent, 'seq'>;
}

function errorOf(error: unknown): EventError | undefined {
  if (error === undefined || error === null) return undefined;
  if (typeof error !== 'object') return { detail: String(error) };
  const e = error as Payload;
  const problem = (typeof e.problem === 'object' && e.problem !== null ? e.problem : {}) as Payload;
  const out: Record<string, unknown> = {};
  const code = str(e.code) ?? str(problem.code);
  const title = str(e.title) ?? str(problem.title);
  const status = num(e.status) ?? num(problem.status);
  const detail = str(e.detail) ?? str(problem.detail) ?? str(e.message);
  if (code !== undefined) out.code = code;
  if (title !== undefined) out.title = title;
  if (status !== undefined) out.status = status;
  if (detail !== undefined) out.detail = detail.slice(0, 500);
  return out as EventError;
}

interface Retention {
  write(event: FlowEvent): void;
  newest(limit: number, service: string): FlowEvent[];
  range(query: { readonly from?: number; readonly to?: number; readonly limit?: number }): FlowEvent[];
  close(): void;
}

interface SqliteStatement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqliteDatabase {
  pragma(text: string): unknown;
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

/** The retention file: events written in batches (one transaction per turn of the event loop). */
function openRetention(options: { readonly path: string; readonly maxAgeMs?: number }, now: () => number): Retention {
  const require = createRequire(import.meta.url);
  const Database = require('better-sqlite3') as new (path: string) => SqliteDatabase;
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS sb_flow_events (service TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (service, seq)) WITHOUT ROWID; ' +
      'CREATE INDEX IF NOT EXISTS sb_flow_events_at ON sb_flow_events (at);',
  );
  const insert = db.prepare('INSERT OR REPLACE INTO sb_flow_events (service, seq, at, event) VALUES (?, ?, ?, ?)');
  const prune = db.prepare('DELETE FROM sb_flow_events WHERE at < ?');
  const maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  let pending: FlowEvent[] = [];
  let scheduled = false;
  let flushes = 0;
  let closed = false;
  const flushAll = db.transaction((events: FlowEvent[]) => {
    for (const event of events) insert.run(event.service, event.seq, event.at, JSON.stringify(event));
  });
  const flush = () => {
    scheduled = false;
    if (closed || pending.length === 0) return;
    const batch = pending;
    pending = [];
    flushAll(batch);
    if (++flushes % 100 === 1) prune.run(now() - maxAgeMs);
  };
  return {
    write(event) {
      pending.push(event);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    newest(limit, service) {
      const rows = db
        .prepare('SELECT event FROM sb_flow_events WHERE service = ? AND at >= ? ORDER BY seq DESC LIMIT ?')
        .all(service, now() - maxAgeMs, limit) as { event: string }[];
      return rows.reverse().map((row) => JSON.parse(row.event) as FlowEvent);
    },
    range({ from = 0, to = Number.MAX_SAFE_INTEGER, limit = 1000 }) {
      flush();
      const rows = db
        .prepare('SELECT event FROM sb_flow_events WHERE at >= ? AND at < ? ORDER BY at, seq LIMIT ?')
        .all(from, to, limit) as { event: string }[];
      return rows.map((row) => JSON.parse(row.event) as FlowEvent);
    },
    close() {
      flush();
      closed = true;
      db.close();
    },
  };
}
