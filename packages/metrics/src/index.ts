import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  AttemptMessage,
  ChangeProgressMessage,
  ClaimCheckMessage,
  DeadLetterMessage,
  Ended,
  HandlerMessage,
  JobCompleteMessage,
  JobPollMessage,
  ProcessMessage,
  ReceiveMessage,
  SendMessage,
  SettleMessage,
} from '@switchboard/core';
import { channels, SwitchboardError, subscribeChannel, subscribeTracing, tracing } from '@switchboard/core';

/** The media type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The HTTP conventions' duration buckets, in seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** Buckets of the polls-per-job histogram. */
export const POLL_BUCKETS: readonly number[] = [1, 2, 3, 5, 10, 20, 50, 100];

type Labels = Readonly<Record<string, string>>;

/** Something whose queue depth can be read: a broker with the optional `pending` capability. */
export interface QueueDepthSource {
  readonly name: string;
  pending?(topic: string, group: string): Promise<number | undefined>;
}

/** A change source (`@switchboard/changes`): its slot lag, read at scrape time. */
export interface LagSource {
  lag(): Promise<{ readonly bytes: number }>;
}

export interface MetricsOptions {
  /** Duration histogram buckets in seconds. Default {@link DURATION_BUCKETS}. */
  readonly durationBuckets?: readonly number[];
  /** How long a scrape waits for queue depths and slot lags, in milliseconds. Default 2 000. */
  readonly collectTimeoutMs?: number;
}

/** A `node:http` route a Switchboard service mounts (`createHttpService({ routes: [metrics.route()] })`). */
export interface MetricsRoute {
  readonly methods: readonly string[];
  readonly path: string;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export interface Metrics {
  /** The exposition text (format 0.0.4), after reading queue depths and slot lags. */
  text(): Promise<string>;
  /** A `node:http` handler answering `GET` (and `HEAD`) with the exposition. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** The handler as a route of a Switchboard HTTP service, at `path` (default `/metrics`). */
  route(path?: string): MetricsRoute;
  /** Reports `switchboard_queue_depth` for a consumer group, read from the broker at each scrape. */
  watchQueue(broker: QueueDepthSource, topic: string, group: string): void;
  /** Reports `switchboard_changes_slot_lag_bytes` of a change source, read at each scrape. */
  watchChangeSource(source: LagSource, labels: { readonly source: string; readonly slot: string }): void;
  /** Stops listening to the channels. */
  close(): void;
}

/** Label set → the key of its series (values in the family's label order). */
function keyOf(labels: Labels): string {
  let key = '';
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}

/**
 * The hot paths find a series by its label values, looked up level by level in nested maps before
 * any label object is built: the labels and their key are made once per series, not per
 * observation, and no key string is built either (the values are mostly the same string objects
 * every time, whose hashes V8 keeps). The values' order is fixed per call site; sites that share a
 * family start with their own tag.
 */
type LabelsOf<M> = (message: M) => Labels;
type Key = string | number | undefined;
/** Most cached series per family (the cache is only a shortcut to `series`: cleared when full). */
const FAST_CACHE = 10_000;

class Lookup<V> {
  #root = new Map<Key, unknown>();
  #size = 0;
  get(a: Key, b: Key, c: Key, d: Key, e: Key, f: Key): V | undefined {
    const l1 = this.#root.get(a) as Map<Key, Map<Key, Map<Key, Map<Key, Map<Key, V>>>>> | undefined;
    return l1?.get(b)?.get(c)?.get(d)?.get(e)?.get(f);
  }
  set(a: Key, b: Key, c: Key, d: Key, e: Key, f: Key, value: V): void {
    if (this.#size >= FAST_CACHE) {
      this.#root = new Map();
      this.#size = 0;
    }
    let level = this.#root;
    for (const key of [a, b, c, d, e]) {
      let next = level.get(key) as Map<Key, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        level.set(key, next);
      }
      level = next;
    }
    level.set(f, value);
    this.#size++;
  }
}

class Counter {
  readonly series = new Map<string, { labels: Labels; value: number }>();
  readonly #fast = new Lookup<{ labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  add(labels: Labels, by = 1): void {
    this.#seriesOf(labels).value += by;
  }
  /** Adds one to the series of `message`, found by the label values `a`…`f` (unused ones `undefined`). */
  addFast<M>(a: Key, b: Key, c: Key, d: Key, e: Key, f: Key, message: M, labelsOf: LabelsOf<M>): void {
    let found = this.#fast.get(a, b, c, d, e, f);
    if (found === undefined) {
      found = this.#seriesOf(labelsOf(message));
      this.#fast.set(a, b, c, d, e, f, found);
    }
    found.value += 1;
  }
  #seriesOf(labels: Labels): { labels: Labels; value: number } {
    const key = keyOf(labels);
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels, value: 0 };
      this.series.set(key, found);
    }
    return found;
  }
}

class Gauge {
  readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(labels: Labels, value: number): void {
    const key = keyOf(labels);
    const found = this.series.get(key);
    if (found === undefined) this.series.set(key, { labels, value });
    else found.value = value;
  }
}

type HistogramSeries = { labels: Labels; counts: number[]; sum: number; count: number };

class Histogram {
  readonly series = new Map<string, HistogramSeries>();
  readonly #fast = new Lookup<HistogramSeries>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}
  observe(labels: Labels, value: number): void {
    this.#add(this.#seriesOf(labels), value);
  }
  /** Observes `value` in the series of `message`, found by the label values `a`…`f` (unused ones `undefined`). */
  observeFast<M>(a: Key, b: Key, c: Key, d: Key, e: Key, f: Key, message: M, labelsOf: LabelsOf<M>, value: number): void {
    let found = this.#fast.get(a, b, c, d, e, f);
    if (found === undefined) {
      found = this.#seriesOf(labelsOf(message));
      this.#fast.set(a, b, c, d, e, f, found);
    }
    this.#add(found, value);
  }
  #seriesOf(labels: Labels): HistogramSeries {
    const key = keyOf(labels);
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, found);
    }
    return found;
  }
  #add(found: HistogramSeries, value: number): void {
    // One increment in the first bucket that holds it; the counts are made cumulative when written.
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]!) i++;
    if (i < this.buckets.length) found.counts[i]! += 1;
    found.sum += value;
    found.count += 1;
  }
}

/** A label value as the format writes it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: integers as they are, `+Inf`, `-Inf`, `NaN` spelled as the format wants. */
function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels, extra?: readonly [string, string]): string {
  const parts: string[] = [];
  for (const name in labels) parts.push(`${name}="${escapeLabelValue(labels[name]!)}"`);
  if (extra !== undefined) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Label names as the format allows them (`[a-zA-Z_][a-zA-Z0-9_]*`): semantic-convention dots become underscores. */
function labels(entries: Record<string, string | number | undefined>): Labels {
  const out: Record<string, string> = {};
  for (const name in entries) {
    const value = entries[name];
    if (value !== undefined && value !== '') out[name] = String(value);
  }
  return out;
}

/** `host` of a URL, parsed once per URL (a client calls the same few URLs again and again); empty when it does not parse. */
const hosts = new Map<string, string>();
function hostOf(url: string): string {
  let host = hosts.get(url);
  if (host === undefined) {
    try {
      host = new URL(url).host;
    } catch {
      host = '';
    }
    if (hosts.size >= 1000) hosts.clear();
    hosts.set(url, host);
  }
  return host;
}

const attemptLabels = (m: AttemptMessage): Labels =>
  labels({
    http_request_method: 'POST',
    server_address: hostOf(m.url),
    switchboard_operation: m.operation,
    http_response_status_code: m.status,
    error_type: failedType(m),
  });

const failedType = (m: Ended): string | undefined => (m.outcome === 'error' ? m.errorType : undefined);

const handlerLabels = (m: HandlerMessage): Labels =>
  labels({ switchboard_service: m.service, switchboard_operation: m.operation, switchboard_via: m.via, error_type: failedType(m) });

function serverLabels(m: HandlerMessage): Labels {
  const status = m.status ?? 500;
  return labels({
    http_request_method: 'POST',
    http_route: m.route,
    http_response_status_code: status,
    error_type: status >= 500 ? String(status) : undefined,
  });
}

const sendDurationLabels = (m: SendMessage): Labels =>
  labels({
    messaging_system: m.system,
    messaging_destination_name: m.destination,
    messaging_operation_name: 'send',
    error_type: failedType(m),
  });

const sentLabels = (m: SendMessage): Labels =>
  labels({ messaging_system: m.system, messaging_destination_name: m.destination, error_type: failedType(m) });

/** The series key of a consumer-side message (system, destination, group, failure). */
/** The error type a failed operation is labelled with (`undefined` when it did not fail). */
const failedKey = (m: Ended): string | undefined => (m.outcome === 'error' ? (m.errorType ?? '') : undefined);

const consumedLabels = (m: ReceiveMessage | ProcessMessage): Labels =>
  labels({
    messaging_system: m.system,
    messaging_destination_name: m.destination,
    messaging_consumer_group_name: m.group,
    error_type: failedType(m),
  });

const settleDurationLabels = (m: SettleMessage): Labels =>
  labels({
    messaging_system: m.system,
    messaging_destination_name: m.destination,
    messaging_consumer_group_name: m.group,
    messaging_operation_name: m.settlement === 'retry' ? 'nack' : 'ack',
    error_type: failedType(m),
  });

const settlementLabels = (m: SettleMessage): Labels =>
  labels({
    messaging_system: m.system,
    messaging_destination_name: m.destination,
    messaging_consumer_group_name: m.group,
    switchboard_settlement: m.settlement,
  });

const FINAL_JOB_STATES = new Set(['succeeded', 'failed', 'canceled']);

/**
 * A Prometheus registry fed by Switchboard's diagnostics channels: call and process durations
 * (histograms), sent and consumed messages, dead letters, polls per job, job durations, queue depth
 * (where the broker can tell) and change-source slot lag. Metric names are the OpenTelemetry
 * semantic conventions' (`http.server.request.duration` → `http_server_request_duration_seconds`);
 * Switchboard's own are `switchboard_*`. Nothing is recorded before it is created or after `close`.
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const buckets = options.durationBuckets ?? DURATION_BUCKETS;
  const collectTimeoutMs = options.collectTimeoutMs ?? 2_000;
  const serverDuration = new Histogram('http_server_request_duration_seconds', 'Duration of HTTP server requests (operations).', buckets);
  const clientDuration = new Histogram('http_client_request_duration_seconds', 'Duration of HTTP client requests (each attempt).', buckets);
  const handlerDuration = new Histogram(
    'switchboard_handler_duration_seconds',
    'Duration of operation handlers, however invoked (HTTP, job, message).',
    buckets,
  );
  const messagingDuration = new Histogram(
    'messaging_client_operation_duration_seconds',
    'Duration of messaging operations (send, ack, nack).',
    buckets,
  );
  const processDuration = new Histogram('messaging_process_duration_seconds', 'Duration of processing a delivered message.', buckets);
  const sent = new Counter('messaging_client_sent_messages_total', 'Messages handed to a broker.');
  const consumed = new Counter('messaging_client_consumed_messages_total', 'Messages delivered by a broker.');
  const deadLetters = new Counter('switchboard_dead_letters_total', 'Dead letters stored.');
  const settlements = new Counter('switchboard_settlements_total', 'Deliveries settled, by settlement.');
  const claimChecks = new Histogram('switchboard_claimcheck_duration_seconds', 'Duration of claim-check puts and gets.', buckets);
  const polls = new Histogram(
    'switchboard_job_polls',
    'Status polls a client made per job, counted when it saw the job end.',
    POLL_BUCKETS,
  );
  const jobDuration = new Histogram('switchboard_job_duration_seconds', 'Time from submission to a final state, on the server.', buckets);
  const jobsCompleted = new Counter('switchboard_jobs_completed_total', 'Jobs that reached a final state, on the server.');
  const depth = new Gauge(
    'switchboard_queue_depth',
    'Messages waiting for a consumer group (published, not yet acknowledged), as the broker reports it.',
  );
  const lag = new Gauge('switchboard_changes_slot_lag_bytes', 'Bytes of WAL the change source has not confirmed yet.');
  const families = [
    serverDuration,
    clientDuration,
    handlerDuration,
    messagingDuration,
    processDuration,
    sent,
    consumed,
    deadLetters,
    settlements,
    claimChecks,
    polls,
    jobDuration,
    jobsCompleted,
    depth,
    lag,
  ];
  const queues = new Map<string, { broker: QueueDepthSource; topic: string; group: string }>();
  const lagSources: { source: LagSource; labels: Labels }[] = [];
  const seconds = (ms: number | undefined) => (ms ?? 0) / 1000;

  const unsubscribe = [
    subscribeTracing(tracing.handler, {
      asyncEnd: (m: HandlerMessage) => {
        handlerDuration.observeFast(
          m.service,
          m.operation,
          m.via,
          failedKey(m),
          undefined,
          undefined,
          m,
          handlerLabels,
          seconds(m.durationMs),
        );
        if (m.via !== 'http') return;
        serverDuration.observeFast(
          m.route,
          m.status ?? 500,
          undefined,
          undefined,
          undefined,
          undefined,
          m,
          serverLabels,
          seconds(m.durationMs),
        );
      },
    }),
    subscribeTracing(tracing.attempt, {
      asyncEnd: (m: AttemptMessage) => {
        clientDuration.observeFast(
          m.url,
          m.operation,
          m.status,
          failedKey(m),
          undefined,
          undefined,
          m,
          attemptLabels,
          seconds(m.durationMs),
        );
      },
    }),
    subscribeTracing(tracing.send, {
      asyncEnd: (m: SendMessage) => {
        const failed = failedKey(m);
        messagingDuration.observeFast(
          'send',
          m.system,
          m.destination,
          failed,
          undefined,
          undefined,
          m,
          sendDurationLabels,
          seconds(m.durationMs),
        );
        sent.addFast(m.system, m.destination, failed, undefined, undefined, undefined, m, sentLabels);
      },
    }),
    subscribeTracing(tracing.receive, {
      end: (m: ReceiveMessage) => {
        consumed.addFast(m.system, m.destination, m.group, failedKey(m), undefined, undefined, m, consumedLabels);
      },
    }),
    subscribeTracing(tracing.process, {
      asyncEnd: (m: ProcessMessage) => {
        processDuration.observeFast(
          m.system,
          m.destination,
          m.group,
          failedKey(m),
          undefined,
          undefined,
          m,
          consumedLabels,
          seconds(m.durationMs),
        );
      },
    }),
    subscribeTracing(tracing.settle, {
      asyncEnd: (m: SettleMessage) => {
        messagingDuration.observeFast(
          'settle',
          m.system,
          m.destination,
          m.group,
          m.settlement,
          failedKey(m),
          m,
          settleDurationLabels,
          seconds(m.durationMs),
        );
        settlements.addFast(m.system, m.destination, m.group, m.settlement, undefined, undefined, m, settlementLabels);
      },
    }),
    ...(['put', 'get'] as const).map((operation) =>
      subscribeTracing(operation === 'put' ? tracing.claimCheckPut : tracing.claimCheckGet, {
        asyncEnd: (m: ClaimCheckMessage) => {
          claimChecks.observe(
            labels({ switchboard_claimcheck_operation: operation, error_type: m.outcome === 'error' ? m.errorType : undefined }),
            seconds(m.durationMs),
          );
        },
      }),
    ),
    subscribeTracing(tracing.jobPoll, {
      asyncEnd: (m: JobPollMessage) => {
        if (m.jobStatus !== undefined && FINAL_JOB_STATES.has(m.jobStatus))
          polls.observe(labels({ switchboard_job_status: m.jobStatus }), m.poll);
      },
    }),
    subscribeChannel(channels.jobComplete, (m: JobCompleteMessage) => {
      const common = { switchboard_service: m.service, switchboard_operation: m.operation, switchboard_job_status: m.status };
      jobsCompleted.add(labels(common));
      jobDuration.observe(labels(common), seconds(m.durationMs));
    }),
    subscribeChannel(channels.deadLetter, (m: DeadLetterMessage) => {
      deadLetters.add(
        labels({
          messaging_system: m.system,
          messaging_destination_name: m.destination,
          messaging_consumer_group_name: m.group,
          switchboard_dead_letter_reason: m.reason,
        }),
      );
    }),
    subscribeChannel(channels.changeProgress, (m: ChangeProgressMessage) => {
      lag.set(labels({ switchboard_change_source: m.source, switchboard_slot: m.slot }), m.lagBytes);
    }),
  ];

  /** Reads what is read at scrape time, each within the collect timeout; a source that fails or is slow keeps its last value. */
  const collect = async (): Promise<void> => {
    const within = <T>(promise: Promise<T>): Promise<T | undefined> =>
      Promise.race([
        promise.catch(() => undefined),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), collectTimeoutMs).unref()),
      ]);
    await Promise.all([
      ...[...queues.values()].map(async ({ broker, topic, group }) => {
        const pending = await within(broker.pending!(topic, group));
        if (pending !== undefined) {
          depth.set(
            labels({ messaging_system: broker.name, messaging_destination_name: topic, messaging_consumer_group_name: group }),
            pending,
          );
        }
      }),
      ...lagSources.map(async ({ source, labels: lagLabels }) => {
        const measured = await within(source.lag());
        if (measured !== undefined) lag.set(lagLabels, measured.bytes);
      }),
    ]);
  };

  const render = (): string => {
    const lines: string[] = [];
    for (const family of families) {
      if (family.series.size === 0) continue;
      const type = family instanceof Histogram ? 'histogram' : family instanceof Counter ? 'counter' : 'gauge';
      lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${type}`);
      if (family instanceof Histogram) {
        for (const series of family.series.values()) {
          let cumulative = 0;
          family.buckets.forEach((bound, i) => {
            cumulative += series.counts[i]!;
            lines.push(`${family.name}_bucket${formatLabels(series.labels, ['le', formatValue(bound)])} ${cumulative}`);
          });
          lines.push(`${family.name}_bucket${formatLabels(series.labels, ['le', '+Inf'])} ${series.count}`);
          lines.push(`${family.name}_sum${formatLabels(series.labels)} ${formatValue(series.sum)}`);
          lines.push(`${family.name}_count${formatLabels(series.labels)} ${series.count}`);
        }
      } else {
        for (const series of family.series.values())
          lines.push(`${family.name}${formatLabels(series.labels)} ${formatValue(series.value)}`);
      }
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  };

  const text = async (): Promise<string> => {
    await collect();
    return render();
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/problem+json' });
      const problem = new SwitchboardError('SB_METHOD_NOT_ALLOWED', { detail: 'The metrics endpoint answers GET and HEAD' }).toProblem();
      res.end(JSON.stringify(problem));
      return;
    }
    text().then(
      (body) => {
        res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  };

  return {
    text,
    handler,
    route(path = '/metrics') {
      return {
        methods: ['GET', 'HEAD'],
        path,
        handle: (req, res) =>
          new Promise<void>((resolve) => {
            res.once('finish', resolve);
            res.once('close', resolve);
            handler(req, res);
          }),
      };
    },
    watchQueue(broker, topic, group) {
      if (typeof broker.pending !== 'function') {
        throw new TypeError(`The ${broker.name} broker cannot tell its queue depth (no pending capability)`);
      }
      queues.set(`${topic}\u0000${group}`, { broker, topic, group });
    },
    watchChangeSource(source, sourceLabels) {
      lagSources.push({ source, labels: labels({ switchboard_change_source: sourceLabels.source, switchboard_slot: sourceLabels.slot }) });
    },
    close() {
      for (const stop of unsubscribe.splice(0)) stop();
    },
  };
}
