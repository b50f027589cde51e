import diagnosticsChannel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { type EventError, type FlowEvent, type FlowEventKind, parseTraceparent } from './event.js';

/** Default bounds of the ring buffer: whichever is reached first evicts the oldest events. */
export const DEFAULT_CAPACITY = 100_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** When a channel's message becomes an event: a plain channel's publish, or a tracing channel's `start`, `end` (sync traces) or `asyncEnd`. */
export type Phase = 'point' | 'start' | 'end' | 'asyncEnd';

/**
 * The channels the recorder listens to (`docs/diagnostics.md` describes their messages), the phase
 * each is read at and the kind of event it becomes. What ended is recorded once, at its end, with
 * `at` set back to when it started and `durationMs` filled in.
 */
export const RECORDED_CHANNELS: readonly { readonly channel: string; readonly phase: Phase; readonly kind: FlowEventKind }[] = [
  { channel: 'switchboard:handler', phase: 'start', kind: 'handler.start' },
  { channel: 'switchboard:handler', phase: 'asyncEnd', kind: 'handler.end' },
  { channel: 'switchboard:call', phase: 'start', kind: 'call.request' },
  { channel: 'switchboard:call', phase: 'asyncEnd', kind: 'call.response' },
  { channel: 'switchboard:call:attempt', phase: 'asyncEnd', kind: 'call.attempt' },
  { channel: 'switchboard:job:submit', phase: 'asyncEnd', kind: 'job.submit' },
  { channel: 'switchboard:job:poll', phase: 'asyncEnd', kind: 'job.poll' },
  { channel: 'switchboard:job:run', phase: 'asyncEnd', kind: 'job.run' },
  { channel: 'switchboard:job:state', phase: 'point', kind: 'job.state' },
  { channel: 'switchboard:job:complete', phase: 'point', kind: 'job.complete' },
  { channel: 'switchboard:send', phase: 'asyncEnd', kind: 'message.publish' },
  { channel: 'switchboard:process', phase: 'asyncEnd', kind: 'message.deliver' },
  { channel: 'switchboard:settle', phase: 'asyncEnd', kind: 'message.settle' },
  { channel: 'switchboard:claimcheck:put', phase: 'asyncEnd', kind: 'claimcheck.put' },
  { channel: 'switchboard:claimcheck:get', phase: 'asyncEnd', kind: 'claimcheck.get' },
  { channel: 'switchboard:dlq', phase: 'point', kind: 'dead-letter' },
];

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
  /** More channels to listen to (plain channels, or tracing channels at a phase), with the kind each becomes. */
  readonly channels?: readonly { readonly channel: string; readonly phase: Phase; readonly kind: FlowEventKind }[];
  /**
   * Keep events in a SQLite file too (better-sqlite3 must be installed): a restarted service
   * starts with its last `capacity` events, and older ones can be read with `history`.
   */
  readonly retention?: { readonly path: string; readonly maxAgeMs?: number; readonly maxRows?: number };
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

/** What the recorder marks on a call's context: started outside any trace, and the trace its first attempt started. */
const UNROOTED = Symbol('switchboard.recorder.unrooted');
const CALL_TRACE = Symbol('switchboard.recorder.callTrace');
type CallMarks = { [UNROOTED]?: boolean; [CALL_TRACE]?: { traceId: string; spanId: string } };

/**
 * Starts recording what this process publishes on Switchboard's diagnostics channels into a
 * bounded ring buffer (`capacity` events and `maxBytes`, whichever is reached first).
 */
export function createFlowRecorder(options: RecorderOptions): FlowRecorder {
  const capacity = Math.max(1, options.capacity ?? DEFAULT_CAPACITY);
  const maxBytes = Math.max(1024, options.maxBytes ?? DEFAULT_MAX_BYTES);
  // Sub-millisecond and consistent with the durations publishers measure (performance.now()).
  const now = options.now ?? (() => Math.round((performance.timeOrigin + performance.now()) * 1000) / 1000);
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
  const retention = options.retention === undefined ? undefined : openRetention(options.retention, options.service, now);

  const evictOldest = () => {
    bytes -= sizes[head] as number;
    buffer[head] = undefined;
    head = (head + 1) % capacity;
    count--;
    evicted++;
  };

  /** Keeps an event; `size` is its JSON length when the caller counted it already. */
  const keep = (event: FlowEvent, size = jsonLength(event)): FlowEvent => {
    while (count > 0 && (count >= capacity || bytes + size > maxBytes)) evictOldest();
    const index = (head + count) % capacity;
    buffer[index] = event;
    sizes[index] = size;
    count++;
    bytes += size;
    recorded++;
    return event;
  };

  const publish = (event: FlowEvent, size?: number) => {
    keep(event, size);
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
    // `normalise` leaves a `seq` of 0 in first place, to be numbered here without a copy.
    let event: FlowEvent;
    if ((draft as { seq?: number }).seq === 0) {
      (draft as unknown as { seq: number }).seq = ++seq;
      event = draft as FlowEvent;
    } else {
      event = { seq: ++seq, ...draft };
    }
    if (typeof redact === 'function') {
      try {
        event = { ...redact(event), seq: event.seq };
      } catch {
        return undefined;
      }
    }
    return event;
  };

  const onMessage = (kind: FlowEventKind, channel: string, phase: Phase) => {
    const shared = fixed(kind, channel, options.service);
    return (message: unknown) => {
      if (typeof message !== 'object' || message === null) return;
      const p = message as Payload;
      if (kind === 'call.request' && p.parentTraceparent === undefined) {
        // A call outside any trace: its trace is the one its first attempt starts; recorded then.
        (p as CallMarks)[UNROOTED] = true;
        return;
      }
      // A call that started outside any trace takes the trace its first attempt started.
      const fallback = kind === 'call.response' ? (p as CallMarks)[CALL_TRACE] : undefined;
      const built = normalise(p, shared, now(), redact === false, phase !== 'start' && phase !== 'point', fallback);
      const draft = built.event;
      // Counted as built, unless a field is added below or a redact function changes the event.
      let counted = typeof redact !== 'function';
      if (kind === 'claimcheck.put' && draft.dataref !== undefined && draft.topic !== undefined && draft.messageId === undefined) {
        // The payload goes to the blob store before its message is published: the publish that follows
        // on that topic carries the reference, which joins the put (and every consumer's get) to its flow.
        if (puts.size > 1000) puts.clear();
        puts.set(draft.topic, draft.dataref);
      } else if (kind === 'message.publish' && draft.topic !== undefined && draft.dataref === undefined) {
        const dataref = puts.get(draft.topic);
        if (dataref !== undefined) {
          puts.delete(draft.topic);
          (draft as { dataref?: string }).dataref = dataref;
          counted = false;
        }
      }
      const event = finish(draft);
      // The seq's digits and its comma were left out of the count.
      if (event !== undefined) publish(event, counted ? built.size + String(event.seq).length + 1 : undefined);
    };
  };

  const puts = new Map<string, string>();
  const callRequest = fixed('call.request', 'switchboard:call', options.service);
  const onAttemptStart = (message: unknown) => {
    // The call this attempt belongs to (its `switchboard:call` context).
    const call = (message as Payload).call as Payload | undefined;
    if (call === undefined || (call as CallMarks)[CALL_TRACE] !== undefined) return;
    const trace = parseTraceparent((message as Payload).traceparent);
    if (trace === undefined) return;
    (call as CallMarks)[CALL_TRACE] = trace;
    if ((call as CallMarks)[UNROOTED] === true) {
      (call as CallMarks)[UNROOTED] = false;
      const built = normalise(call, callRequest, now(), redact === false, false, trace);
      const event = finish(built.event);
      if (event !== undefined) publish(event, typeof redact === 'function' ? undefined : built.size + String(event.seq).length + 1);
    }
  };
  const attemptStart = diagnosticsChannel.channel('tracing:switchboard:call:attempt:start');
  attemptStart.subscribe(onAttemptStart);

  const subscriptions: [string, (message: unknown) => void][] = [];
  for (const { channel, phase, kind } of [...RECORDED_CHANNELS, ...(options.channels ?? [])]) {
    const name = phase === 'point' ? channel : `tracing:${channel}:${phase}`;
    const handler = onMessage(kind, channel, phase);
    diagnosticsChannel.subscribe(name, handler);
    subscriptions.push([name, handler]);
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
      attemptStart.unsubscribe(onAttemptStart);
      listeners.clear();
      retention?.close();
    },
  };
}

/** What JSON.stringify escapes in a string (quote, backslash, control characters, and surrogates, which may be lone). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** The JSON length of a value as a field of an event: strings and finite numbers counted directly, anything else stringified. */
function valueLength(value: unknown): number {
  if (typeof value === 'string') return ESCAPED.test(value) ? JSON.stringify(value).length : value.length + 2;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value).length : 4; // null
  const json = JSON.stringify(value) as string | undefined;
  return json === undefined ? -1 : json.length;
}

/**
 * `JSON.stringify(event).length` of any event (one given to `record`, or changed by a redact
 * function): every field but an `undefined` one, which JSON.stringify leaves out.
 */
function jsonLength(event: object): number {
  let length = 2; // {}
  let fields = 0;
  for (const key in event) {
    const size = valueLength((event as Record<string, unknown>)[key]);
    if (size < 0) continue; // undefined, a function: left out, as JSON.stringify does
    length += (ESCAPED.test(key) ? JSON.stringify(key).length : key.length + 2) + 1 + size;
    fields++;
  }
  return length + Math.max(0, fields - 1);
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/** An event as the recorder builds it from a channel message, and the length of its JSON, counted field by field as it was built. */
interface Built {
  readonly event: Omit<FlowEvent, 'seq'>;
  readonly size: number;
}

/** A string or number field's share of the JSON length: `"key":value` and its comma. */
/** `"at":` and the comma after the time. */
const AT_KEY = 6;

/**
 * The JSON length of a time (ms since the epoch, rounded to the microsecond) at most: its integer
 * digits, and a point with four decimals unless it is whole (a double this large needs at most four
 * to be told apart). Counted without converting the number to text.
 */
function timeLength(at: number): number {
  // Not on the microsecond grid (a clock given for tests): counted exactly.
  if (Math.round(at * 1000) / 1000 !== at) return String(at).length;
  const whole = Math.trunc(at);
  return integerLength(whole) + (whole === at ? 0 : 5);
}

/** The decimal digits of an integer, its sign included. */
function integerLength(value: number): number {
  if (value < 0) return 1 + integerLength(-value);
  let digits = 1;
  for (let limit = 10; value >= limit && digits < 22; limit *= 10) digits++;
  return digits;
}

/** The last traceparents read and their ids: an operation's events repeat the same one. */
let lastTraceparent: string | undefined;
let lastTrace: { traceId: string; spanId: string } | undefined;

function traceOf(value: unknown): { traceId: string; spanId: string } | undefined {
  if (typeof value !== 'string') return undefined;
  if (value !== lastTraceparent) {
    lastTrace = parseTraceparent(value);
    lastTraceparent = value;
  }
  return lastTrace;
}

function fieldLength(key: string, value: string | number | undefined): number {
  if (value === undefined) return 0;
  return (
    key.length +
    4 +
    (typeof value === 'string'
      ? ESCAPED.test(value)
        ? JSON.stringify(value).length
        : value.length + 2
      : Number.isInteger(value)
        ? integerLength(value)
        : String(value).length)
  );
}

/** What every event of one channel and phase shares: its kind, channel and service, and their share of the JSON length. */
interface Fixed {
  readonly kind: FlowEventKind;
  readonly channel: string;
  readonly service: string;
  readonly size: number;
}

function fixed(kind: FlowEventKind, channel: string, service: string): Fixed {
  // {"seq":  and  "service":…, "kind":…, "channel":… — the seq's digits and its comma are added when it is numbered.
  const size = 2 + 6 + fieldLength('service', service) + fieldLength('kind', kind) + fieldLength('channel', channel);
  return { kind, channel, service, size };
}

function normalise(
  p: Payload,
  shared: Fixed,
  now: number,
  keepData: boolean,
  ended: boolean,
  fallback?: { readonly traceId: string; readonly spanId: string },
): Built {
  const { kind, channel, service } = shared;
  const context = p.context;
  const trace =
    traceOf(
      p.traceparent ??
        p.parentTraceparent ??
        (typeof context === 'object' && context !== null ? (context as Payload).traceparent : undefined),
    ) ?? fallback;
  const durationMs = num(p.durationMs);
  // What ended is placed at its start; its duration says when it ended.
  const at = ended && durationMs !== undefined ? Math.round((now - durationMs) * 1000) / 1000 : now;
  const status = num(p.status) ?? str(p.status);
  const error = ended || kind === 'dead-letter' ? errorOf(p.problem ?? p.error, str(p.errorType)) : undefined;
  const data = keepData ? (p.data ?? p.input ?? p.result) : undefined;
  // Only the fields that have a value (a small object per event), counted as they are set.
  const out: Record<string, unknown> = { seq: 0, at, service, kind, channel };
  let size = shared.size + AT_KEY + timeLength(at);
  const set = (key: keyof FlowEvent, value: string | number | undefined) => {
    if (value === undefined) return;
    out[key] = value;
    size += fieldLength(key, value);
  };
  set('operation', str(p.operation));
  set('contract', str(p.service));
  set('system', str(p.system) ?? str(p.store));
  set('sendKind', kind === 'message.publish' ? str(p.kind) : undefined);
  set('topic', str(p.destination) ?? str(p.topic));
  set('type', str(p.type));
  set('group', str(p.group));
  set('source', str(p.source));
  set('via', str(p.via));
  set('url', str(p.url));
  set('traceId', trace?.traceId);
  set('spanId', trace?.spanId);
  set('messageId', str(p.messageId));
  set('jobId', str(p.jobId));
  set('idempotencyKey', str(p.idempotencyKey));
  set('status', status);
  set('jobStatus', str(p.jobStatus));
  set('outcome', str(p.settlement) ?? str(p.outcome));
  set('reason', str(p.reason));
  set('attempt', num(p.attempt));
  set('attempts', num(p.attempts));
  set('poll', num(p.poll));
  set('retryAfterMs', num(p.retryAfterMs) ?? num(p.retryDelayMs));
  set('durationMs', durationMs === undefined ? undefined : Math.round(durationMs * 1000) / 1000);
  set('dataref', str(p.ref) ?? str(p.dataref));
  set('bytes', num(p.size) ?? num(p.bytes) ?? num(p.bodySize));
  if (error !== undefined) {
    out.error = error;
    size += 9 + JSON.stringify(error).length;
  }
  if (data !== undefined) {
    const length = valueLength(data);
    if (length >= 0) {
      out.data = data;
      size += 8 + length;
    }
  }
  // Every field ended with a comma; the last one has none.
  return { event: out as unknown as Omit<FlowEvent, 'seq'>, size: size - 1 };
}

function errorOf(error: unknown, errorType: string | undefined): EventError | undefined {
  if (error === undefined || error === null) return errorType === undefined ? undefined : { code: errorType };
  if (typeof error !== 'object') return { detail: String(error), ...(errorType === undefined ? {} : { code: errorType }) };
  const e = error as Payload;
  const problem = (typeof e.problem === 'object' && e.problem !== null ? e.problem : {}) as Payload;
  const out: Record<string, unknown> = {};
  const code = str(e.code) ?? str(problem.code) ?? errorType;
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
function openRetention(
  options: { readonly path: string; readonly maxAgeMs?: number; readonly maxRows?: number },
  service: string,
  now: () => number,
): Retention {
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
  const trim = db.prepare(
    'DELETE FROM sb_flow_events WHERE service = ? AND seq <= (SELECT seq FROM sb_flow_events WHERE service = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  );
  const maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const maxRows = Math.max(1, options.maxRows ?? 1_000_000);
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
    if (++flushes % 100 === 1) {
      prune.run(now() - maxAgeMs);
      trim.run(service, service, maxRows);
    }
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
