import { type FlowEvent, keysOf, type Pattern, patternOf } from './event.js';

/** An event as the index holds it: its position in the index and the flow it belongs to. */
interface Entry {
  readonly g: number;
  readonly event: FlowEvent;
  flow: Flow;
  evicted: boolean;
}

interface Flow {
  readonly id: number;
  entries: Entry[];
  live: number;
  dead: number;
  readonly keys: Set<string>;
  summary: FlowSummary | undefined;
}

export interface FlowSummary {
  /** The flow's handle: one of its keys (`t:<trace id>`, `m:<MessageId>`, `j:<job id>`, `k:<Idempotency-Key>`). */
  readonly key: string;
  readonly title: string;
  readonly started: number;
  readonly ended: number;
  readonly durationMs: number;
  readonly services: readonly string[];
  readonly patterns: readonly Pattern[];
  readonly status: 'ok' | 'error' | 'pending';
  readonly events: number;
  readonly traces: readonly string[];
  readonly messageIds: readonly string[];
  readonly jobIds: readonly string[];
  readonly idempotencyKeys: readonly string[];
  /** Operations and CloudEvents types the flow touched. */
  readonly names: readonly string[];
}

export interface JobSummary {
  readonly jobId: string;
  readonly operation?: string;
  readonly service: string;
  readonly status: string;
  readonly submittedAt: number;
  readonly updatedAt: number;
  readonly polls: number;
  readonly flow: string;
}

export interface MetricsWindow {
  /** Start of each second (ms since the epoch), oldest first. */
  readonly seconds: readonly number[];
  /** Completed calls, jobs, messages and events per second. */
  readonly rate: Readonly<Record<'call' | 'job' | 'message' | 'event', readonly number[]>>;
  /** Handler and call latency percentiles per second, in ms (`null`: nothing completed that second). */
  readonly p50: readonly (number | null)[];
  readonly p99: readonly (number | null)[];
  /** Dead letters stored per second (`dead-letter` events of every service joined). */
  readonly deadLetters: readonly number[];
}

const TERMINAL_JOB = new Set(['succeeded', 'failed', 'canceled', 'cancelled', 'expired']);

/**
 * Events of one or many services joined into flows: two events belong to one flow when they share
 * a trace id, a MessageId, a job id or an Idempotency-Key (transitively). Bounded like the recorder:
 * past `capacity` events the oldest go, and a flow whose events all went is forgotten.
 */
export class FlowIndex {
  readonly capacity: number;
  readonly #ring: (Entry | undefined)[];
  #head = 0;
  #count = 0;
  #g = 0;
  #nextFlow = 1;
  readonly #byKey = new Map<string, Flow>();
  /** Flows in order of their last change, the most recent last. */
  readonly #flows = new Map<number, Flow>();
  readonly #jobs = new Map<string, JobSummary>();
  readonly #seen = new Map<string, number>();
  readonly #listeners = new Set<(event: FlowEvent, g: number) => void>();

  constructor(capacity = 100_000) {
    this.capacity = Math.max(1, capacity);
    this.#ring = new Array(this.capacity);
  }

  get size(): number {
    return this.#count;
  }

  get flowCount(): number {
    return this.#flows.size;
  }

  /** Position of the newest event (what `since` resumes from). */
  get last(): number {
    return this.#g;
  }

  /** Adds an event; an event already added (same service and seq) is ignored. */
  add(event: FlowEvent): void {
    const seen = this.#seen.get(event.service) ?? 0;
    if (event.seq <= seen) return;
    this.#seen.set(event.service, event.seq);
    if (this.#count >= this.capacity) this.#evict();
    const keys = keysOf(event);
    if (keys.length === 0) keys.push(`e:${event.service}:${event.seq}`);
    let flow: Flow | undefined;
    for (const key of keys) {
      const found = this.#byKey.get(key);
      if (found === undefined || found === flow) continue;
      flow = flow === undefined ? found : this.#merge(flow, found);
    }
    if (flow === undefined) {
      flow = { id: this.#nextFlow++, entries: [], live: 0, dead: 0, keys: new Set(), summary: undefined };
    }
    for (const key of keys) {
      if (!flow.keys.has(key)) {
        flow.keys.add(key);
        this.#byKey.set(key, flow);
      }
    }
    const entry: Entry = { g: ++this.#g, event, flow, evicted: false };
    insertByTime(flow.entries, entry);
    flow.live++;
    flow.summary = undefined;
    this.#flows.delete(flow.id);
    this.#flows.set(flow.id, flow);
    this.#ring[(this.#head + this.#count) % this.capacity] = entry;
    this.#count++;
    this.#trackJob(event, flow);
    for (const listener of this.#listeners) listener(event, entry.g);
  }

  /** Forgets how far `service` got (it restarted: its positions start again). */
  forget(service: string): void {
    this.#seen.delete(service);
  }

  /** The newest position added for `service` (what to ask a peer for next). */
  seenOf(service: string): number {
    return this.#seen.get(service) ?? 0;
  }

  subscribe(listener: (event: FlowEvent, g: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Events added after position `since`, oldest first, with their positions. */
  since(since: number, limit = 1000): { g: number; event: FlowEvent }[] {
    const out: { g: number; event: FlowEvent }[] = [];
    const first = this.#count === 0 ? 0 : (this.#ring[this.#head] as Entry).g;
    const start = Math.max(0, since - first + 1);
    for (let i = start; i < this.#count && out.length < limit; i++) {
      const entry = this.#ring[(this.#head + i) % this.capacity] as Entry;
      out.push({ g: entry.g, event: entry.event });
    }
    return out;
  }

  /** The flow holding `key` (a flow's handle, or any id it carries). */
  flow(key: string): { summary: FlowSummary; events: FlowEvent[] } | undefined {
    const flow = this.#byKey.get(key) ?? this.#byKey.get(normaliseKey(key));
    if (flow === undefined) return undefined;
    return { summary: this.#summary(flow), events: liveEvents(flow) };
  }

  /** Flows, the most recently changed first, filtered. */
  list(
    options: {
      readonly limit?: number;
      readonly q?: string;
      readonly service?: string;
      readonly pattern?: string;
      readonly status?: string;
    } = {},
  ): { total: number; flows: FlowSummary[] } {
    const limit = options.limit ?? 100;
    const matches = options.q ? this.#search(options.q) : undefined;
    const out: FlowSummary[] = [];
    let total = 0;
    const flows = matches ?? [...this.#flows.values()].reverse();
    if (!options.service && !options.pattern && !options.status) {
      // Nothing to filter by: only the flows shown are summarised (a summary is cached until its flow changes).
      return { total: flows.length, flows: flows.slice(0, limit).map((flow) => this.#summary(flow)) };
    }
    for (const flow of flows) {
      const summary = this.#summary(flow);
      if (options.service && !summary.services.includes(options.service)) continue;
      if (options.pattern && !summary.patterns.includes(options.pattern as Pattern)) continue;
      if (options.status && summary.status !== options.status) continue;
      total++;
      if (out.length < limit) out.push(summary);
    }
    return { total, flows: out };
  }

  /** Jobs seen, the most recently changed first; `active` keeps only those not finished. */
  jobs(options: { readonly active?: boolean; readonly limit?: number } = {}): JobSummary[] {
    const out: JobSummary[] = [];
    for (const job of [...this.#jobs.values()].reverse()) {
      if (options.active && TERMINAL_JOB.has(job.status)) continue;
      out.push(job);
      if (out.length >= (options.limit ?? 200)) break;
    }
    return out;
  }

  /** Per-second rate and latency percentiles over the last `seconds` seconds before `now`. */
  metrics(seconds: number, now: number): MetricsWindow {
    const end = Math.floor(now / 1000) * 1000 + 1000;
    const start = end - seconds * 1000;
    const secondsList = Array.from({ length: seconds }, (_, i) => start + i * 1000);
    const rate = {
      call: new Array(seconds).fill(0),
      job: new Array(seconds).fill(0),
      message: new Array(seconds).fill(0),
      event: new Array(seconds).fill(0),
    };
    const deadLetters: number[] = new Array(seconds).fill(0);
    const durations: number[][] = Array.from({ length: seconds }, () => []);
    for (let i = this.#count - 1; i >= 0; i--) {
      const { event } = this.#ring[(this.#head + i) % this.capacity] as Entry;
      if (event.at < start - 60_000) break; // events of peers may arrive a little out of order
      if (event.at < start || event.at >= end) continue;
      const slot = Math.floor((event.at - start) / 1000);
      const pattern = patternOf(event);
      if ((event.kind === 'handler.end' || event.kind === 'call.response') && event.durationMs !== undefined) {
        durations[slot]?.push(event.durationMs);
      }
      if (event.kind === 'call.response') rate.call[slot]++;
      else if (event.kind === 'job.complete') rate.job[slot]++;
      else if (event.kind === 'message.deliver' && (pattern === 'message' || pattern === 'event')) rate[pattern][slot]++;
      else if (event.kind === 'dead-letter') deadLetters[slot] = (deadLetters[slot] ?? 0) + 1;
    }
    const pick = (q: number) =>
      durations.map((list) => {
        if (list.length === 0) return null;
        list.sort((a, b) => a - b);
        return Math.round((list[Math.min(list.length - 1, Math.floor(q * list.length))] as number) * 100) / 100;
      });
    return { seconds: secondsList, rate, p50: pick(0.5), p99: pick(0.99), deadLetters };
  }

  #search(q: string): Flow[] {
    const text = q.trim();
    const exact = [text, normaliseKey(text), `t:${text}`, `m:${text}`, `j:${text}`, `k:${text}`, `d:${text}`];
    const found = new Set<Flow>();
    for (const key of exact) {
      const flow = this.#byKey.get(key);
      if (flow !== undefined) found.add(flow);
    }
    if (found.size === 0 && text.length >= 3) {
      const lower = text.toLowerCase();
      for (const [key, flow] of this.#byKey) if (key.toLowerCase().includes(lower)) found.add(flow);
      if (found.size === 0) {
        for (const flow of this.#flows.values()) {
          if (this.#summary(flow).names.some((name) => name.toLowerCase().includes(lower))) found.add(flow);
        }
      }
    }
    return [...found].sort((a, b) => this.#summary(b).ended - this.#summary(a).ended);
  }

  #merge(a: Flow, b: Flow): Flow {
    const [big, small] = a.entries.length >= b.entries.length ? [a, b] : [b, a];
    for (const entry of small.entries) {
      entry.flow = big;
    }
    big.entries = mergeByTime(big.entries, small.entries);
    big.live += small.live;
    big.dead += small.dead;
    for (const key of small.keys) {
      big.keys.add(key);
      this.#byKey.set(key, big);
    }
    big.summary = undefined;
    this.#flows.delete(small.id);
    for (const job of this.#jobs.values()) if (small.keys.has(job.flow)) this.#jobs.set(job.jobId, { ...job, flow: firstKey(big) });
    return big;
  }

  #evict(): void {
    const entry = this.#ring[this.#head] as Entry;
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#count--;
    entry.evicted = true;
    const flow = entry.flow;
    flow.live--;
    flow.dead++;
    flow.summary = undefined;
    if (flow.live === 0) {
      for (const key of flow.keys) if (this.#byKey.get(key) === flow) this.#byKey.delete(key);
      this.#flows.delete(flow.id);
    } else if (flow.dead > 32 && flow.dead > flow.live) {
      flow.entries = flow.entries.filter((e) => !e.evicted);
      flow.dead = 0;
    }
    const jobId = entry.event.jobId;
    if (jobId !== undefined && flow.live === 0) this.#jobs.delete(jobId);
  }

  #trackJob(event: FlowEvent, flow: Flow): void {
    if (event.jobId === undefined) return;
    const previous = this.#jobs.get(event.jobId);
    let status = previous?.status ?? (event.kind === 'job.submit' ? 'queued' : 'running');
    if ((event.kind === 'job.state' || event.kind === 'job.complete') && typeof event.status === 'string') status = event.status;
    else if (event.jobStatus !== undefined && !TERMINAL_JOB.has(status)) status = event.jobStatus;
    const operation = event.operation ?? previous?.operation;
    const job: JobSummary = {
      jobId: event.jobId,
      service:
        previous?.service ?? (event.kind === 'job.submit' || event.kind === 'job.poll' ? (event.contract ?? event.service) : event.service),
      status,
      submittedAt: Math.min(previous?.submittedAt ?? event.at, event.at),
      updatedAt: Math.max(previous?.updatedAt ?? event.at, event.at),
      polls: (previous?.polls ?? 0) + (event.kind === 'job.poll' ? 1 : 0),
      flow: firstKey(flow),
      ...(operation === undefined ? {} : { operation }),
    };
    this.#jobs.delete(event.jobId);
    this.#jobs.set(event.jobId, job);
    if (this.#jobs.size > 5000) {
      const oldest = this.#jobs.keys().next().value;
      if (oldest !== undefined) this.#jobs.delete(oldest);
    }
  }

  #summary(flow: Flow): FlowSummary {
    if (flow.summary !== undefined) return flow.summary;
    const events = liveEvents(flow);
    const services = new Set<string>();
    const patterns = new Set<Pattern>();
    const traces = new Set<string>();
    const messageIds = new Set<string>();
    const jobIds = new Set<string>();
    const keys = new Set<string>();
    let error = false;
    let open = 0;
    const published = new Set<string>();
    const settled = new Set<string>();
    const lastDelivery = new Map<string, string>();
    const jobStatus = new Map<string, string>();
    const names = new Set<string>();
    for (const event of events) {
      services.add(event.service);
      const pattern = patternOf(event);
      if (pattern !== 'other') patterns.add(pattern);
      if (event.traceId) traces.add(event.traceId);
      if (event.messageId) messageIds.add(event.messageId);
      if (event.jobId) jobIds.add(event.jobId);
      if (event.idempotencyKey) keys.add(event.idempotencyKey);
      const name = event.operation ?? event.type;
      if (name !== undefined) names.add(name);
      switch (event.kind) {
        case 'handler.start':
          open++;
          break;
        case 'handler.end':
          open--;
          if (event.outcome === 'error') error = true;
          break;
        case 'call.response':
          if (event.outcome === 'error' || (typeof event.status === 'number' && event.status >= 400)) error = true;
          break;
        case 'message.publish':
          if (event.messageId) published.add(event.messageId);
          if (event.outcome === 'error') error = true;
          break;
        case 'message.deliver':
          if (event.messageId && event.outcome !== 'retry') settled.add(event.messageId);
          // The last word per message and group counts: a replayed dead letter that was then processed is fine.
          if (event.messageId) lastDelivery.set(`${event.messageId}|${event.group ?? ''}`, event.outcome ?? '');
          break;
        case 'job.state':
        case 'job.complete':
          if (event.jobId && typeof event.status === 'string') jobStatus.set(event.jobId, event.status);
          if (event.status === 'failed') error = true;
          break;
        case 'job.submit':
          if (event.jobId && !jobStatus.has(event.jobId)) jobStatus.set(event.jobId, 'queued');
          if (event.outcome === 'error') error = true;
          break;
        case 'claimcheck.get':
        case 'claimcheck.put':
          if (event.outcome === 'error') error = true;
          break;
      }
    }
    for (const outcome of lastDelivery.values()) if (outcome === 'dead-letter' || outcome === 'error') error = true;
    let unsettled = 0;
    for (const id of published) if (!settled.has(id)) unsettled++;
    const jobsOpen = [...jobStatus.values()].some((status) => !TERMINAL_JOB.has(status));
    const first = events[0];
    const started = first?.at ?? 0;
    let ended = started;
    for (const event of events) ended = Math.max(ended, event.at + (event.kind === 'job.complete' ? 0 : (event.durationMs ?? 0)));
    ended = Math.round(ended);
    flow.summary = {
      key: firstKey(flow),
      title: titleOf(events, [...names]),
      started,
      ended,
      durationMs: ended - started,
      services: [...services],
      patterns: [...patterns],
      status: error ? 'error' : open > 0 || unsettled > 0 || jobsOpen ? 'pending' : 'ok',
      events: events.length,
      traces: [...traces],
      messageIds: [...messageIds],
      jobIds: [...jobIds],
      idempotencyKeys: [...keys],
      names: [...names],
    };
    return flow.summary;
  }
}

/** The flow's name: what started it (a served request, a call, a job or a message), then what it reached. */
function titleOf(events: readonly FlowEvent[], names: string[]): string {
  const first = events[0];
  if (first === undefined) return 'flow';
  const root = events.find(
    (event) =>
      event.at - first.at < 5 &&
      (event.kind === 'handler.start' || event.kind === 'call.request') &&
      event.via !== 'message' &&
      event.via !== 'job',
  );
  const rootName = root?.operation;
  const ordered = rootName === undefined ? names : [rootName, ...names.filter((name) => name !== rootName)];
  return ordered.slice(0, 3).join(' → ') || first.kind;
}

function liveEvents(flow: Flow): FlowEvent[] {
  const out: FlowEvent[] = [];
  for (const entry of flow.entries) if (!entry.evicted) out.push(entry.event);
  return out;
}

/** The flow's handle: its trace key when it has one, else its first key. */
function firstKey(flow: Flow): string {
  let first: string | undefined;
  for (const key of flow.keys) {
    if (key.startsWith('t:')) return key;
    first ??= key;
  }
  return first ?? `f:${flow.id}`;
}

/** A bare traceparent becomes its trace key. */
function normaliseKey(key: string): string {
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(key.trim());
  return match ? `t:${match[1]}` : key;
}

function insertByTime(entries: Entry[], entry: Entry): void {
  let i = entries.length;
  while (i > 0 && (entries[i - 1] as Entry).event.at > entry.event.at) i--;
  if (i === entries.length) entries.push(entry);
  else entries.splice(i, 0, entry);
}

function mergeByTime(a: Entry[], b: Entry[]): Entry[] {
  const out: Entry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.event.at <= y.event.at)) {
      out.push(x as Entry);
      i++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}
