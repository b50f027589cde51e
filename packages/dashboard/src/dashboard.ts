import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeadLetterListOptions, DeadLetterSummary, JobStore, DeadLetter as StoredDeadLetter } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { FlowEvent } from './event.js';
import { FlowIndex } from './flows.js';
import type { FlowRecorder } from './recorder.js';

/** What the dead-letter view needs: `Messaging.deadLetters` of `@switchboard/messaging` has this shape. */
export interface DashboardDeadLetters {
  list(options?: DeadLetterListOptions): Promise<{ readonly items: readonly DeadLetterSummary[]; readonly nextCursor?: string }>;
  get(id: string): Promise<StoredDeadLetter | undefined>;
  replay(selector: {
    readonly ids: readonly string[];
  }): Promise<{ readonly replayed: number; readonly ids: readonly string[]; readonly messageIds: readonly string[] }>;
}

/** What the receipts view needs: `Messaging.receipts` of `@switchboard/messaging` has this shape. */
export interface DashboardReceipts {
  get(messageId: string, options?: { readonly source?: string }): Promise<unknown>;
}

/**
 * What the jobs view's Cancel needs: `enableJobs(...)` of `@switchboard/http` has this shape
 * (`cancel` as `DELETE {base}/jobs/{id}` does it).
 */
export interface DashboardJobs {
  cancel(id: string): Promise<{
    readonly outcome: 'canceled' | 'cancel-requested' | 'finished' | 'gone' | 'missing';
    readonly job?: { readonly status: string };
  }>;
  /**
   * The job store (`enableJobs(...).store`): the jobs view reads each job in progress from it for its
   * progress, lease owner, heartbeat age and stuck flag.
   */
  readonly store?: Pick<JobStore, 'get'>;
  /** The worker of this process (`enableJobs(...).runner`): its `leaseMs` dates a lease's last renewal. */
  readonly runner?: { readonly leaseMs: number } | undefined;
}

/**
 * What the job store says of a job in progress, next to what the recorder saw. `stuck`: the job is
 * `running` and its lease expired (`leaseExpiresAt <= now`): no heartbeat renewed it for a whole
 * lease, so its worker died, hangs, or cannot reach the store; the next claim takes it over (or
 * fails it when no attempt is left).
 */
export interface JobLiveState {
  readonly jobId: string;
  readonly service: string;
  readonly status: string;
  readonly progress?: unknown;
  /** The worker holding (or last holding) the lease. */
  readonly leaseOwner?: string;
  readonly leaseExpiresAt?: number;
  /** When the lease was last renewed (claim or heartbeat): `leaseExpiresAt - leaseMs`, when this process has a worker. */
  readonly heartbeatAt?: number;
  /** `now - heartbeatAt`. */
  readonly heartbeatAgeMs?: number;
  readonly stuck: boolean;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly cancelRequested: boolean;
}

/** What the queue-depth chart reads: a `Broker` with the optional `pending` capability has this shape. */
export interface DashboardQueueDepth {
  pending(topic: string, group: string): Promise<number | undefined>;
}

/** A queue the chart follows: a topic and a consumer group on it. */
export interface DashboardQueue {
  readonly topic: string;
  readonly group: string;
}

export interface DashboardPeer {
  /** The peer's dashboard, e.g. `http://127.0.0.1:4002/_switchboard`. */
  readonly url: string;
  /** The peer's dashboard token, when it has one. */
  readonly token?: string;
}

export interface DashboardOptions {
  /** This service's recorder (its events are the dashboard's own; peers pull them from `api/events?local=1`). */
  readonly recorder?: FlowRecorder;
  /** This service's name; default the recorder's. */
  readonly service?: string;
  /** Other services' dashboards whose events this one pulls and joins into the same flows. */
  readonly peers?: readonly DashboardPeer[];
  /** How often peers are asked for new events, in ms. Default 500. */
  readonly pollMs?: number;
  /** This service's dead letters (list, inspect, replay). */
  readonly deadLetters?: DashboardDeadLetters;
  /** This service's receipts (by MessageId). */
  readonly receipts?: DashboardReceipts;
  /** This service's jobs, for the jobs view's Cancel. */
  readonly jobs?: DashboardJobs;
  /**
   * This service's broker, for the queue-depth chart: every `queuePollMs` the dashboard asks its
   * `pending` for the groups in `queues` and those this service's recorder saw deliveries of.
   * A broker without `pending` (at-most-once engines, SNS/SQS) gives no chart.
   */
  readonly broker?: { readonly pending?: DashboardQueueDepth['pending'] };
  /** Queues to chart besides those seen in deliveries. */
  readonly queues?: readonly DashboardQueue[];
  /** How often queue depths are read, in ms. Default 2000. */
  readonly queuePollMs?: number;
  /**
   * Without a token the dashboard answers only requests from the loopback interface (403 for any
   * other). With one, every request must carry it: `Authorization: Bearer <token>`, or `?token=`
   * once (then a cookie scoped to the dashboard's path).
   */
  readonly token?: string;
  /** Where it is mounted. Default `/_switchboard`. */
  readonly basePath?: string;
  /** Events the joined index keeps (this service's and the peers'). Default 100 000. */
  readonly capacity?: number;
  /** Show dead letters' bodies in the dead-letter view. Default false (headers and size only). */
  readonly showBodies?: boolean;
}

export interface Dashboard {
  readonly basePath: string;
  readonly index: FlowIndex;
  /**
   * Answers a request under `basePath` and resolves `true`, or resolves `false` without touching
   * the response for any other path. `body`: the request body when a framework already read it.
   */
  handle(req: IncomingMessage, res: ServerResponse, body?: unknown): Promise<boolean>;
  /** A `node:http` request listener: the dashboard, 404 for anything else. */
  readonly listener: (req: IncomingMessage, res: ServerResponse) => void;
  /** An extra route for `createHttpService({ routes })` of `@switchboard/http`. */
  readonly route: {
    readonly methods: readonly string[];
    readonly path: string;
    handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  };
  /** Express middleware: `app.use(dashboard.express)`. */
  readonly express: (req: IncomingMessage & { body?: unknown }, res: ServerResponse, next: (error?: unknown) => void) => void;
  /** Fastify plugin: `await fastify.register(dashboard.fastify)`. */
  readonly fastify: (instance: FastifyLike) => Promise<void>;
  /** Pulls new events from every peer now (the poller does it every `pollMs`). */
  pull(): Promise<void>;
  /** Peers and whether the last pull reached them. */
  peers(): readonly PeerState[];
  close(): Promise<void>;
}

export interface PeerState {
  readonly url: string;
  readonly service?: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly capabilities?: { readonly deadLetters: boolean; readonly receipts: boolean; readonly jobs?: boolean; readonly queues?: boolean };
}

interface FastifyLike {
  route(options: {
    method: string[];
    url: string;
    handler: (request: { raw: IncomingMessage; body?: unknown }, reply: { raw: ServerResponse; hijack(): void }) => Promise<void>;
  }): unknown;
}

/** How far back the queue-depth samples go, and how many queues a dashboard follows at most. */
const QUEUE_WINDOW_MS = 60_000;
const MAX_QUEUES = 100;
/** Jobs in progress read from their store per `api/jobs`. */
const MAX_LIVE_JOBS = 100;
const TERMINAL_JOB = new Set(['succeeded', 'failed', 'canceled', 'cancelled', 'expired']);

function idle(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
  '/favicon.svg': 'favicon.svg',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The dashboard: a `node:http` handler serving an offline page (no CDN, no framework) and its JSON
 * API under `basePath`. It joins its own recorder's events with those it pulls from peers, so the
 * dashboard of one service shows flows across all of them.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const basePath = (options.basePath ?? '/_switchboard').replace(/\/+$/, '');
  const service = options.service ?? options.recorder?.service ?? 'service';
  const index = new FlowIndex(options.capacity ?? 100_000);
  const bootId = randomBytes(6).toString('hex');
  const assets = new Map<string, Buffer>();
  const assetDir = new URL('../assets/', import.meta.url);
  for (const file of new Set(Object.values(ASSETS))) assets.set(file, readFileSync(new URL(file, assetDir)));

  const unsubscribe = options.recorder?.subscribe((event) => index.add(event));
  if (options.recorder !== undefined) for (const event of options.recorder.events({ limit: Number.MAX_SAFE_INTEGER })) index.add(event);

  const peers = (options.peers ?? []).map((peer) => ({
    ...peer,
    url: peer.url.replace(/\/+$/, ''),
    cursor: 0,
    boot: undefined as string | undefined,
    state: { url: peer.url, ok: false } as PeerState,
  }));
  const peerFetch = async (peer: (typeof peers)[number], path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (peer.token !== undefined) headers.set('authorization', `Bearer ${peer.token}`);
    return fetch(`${peer.url}${path}`, { ...init, headers, signal: init.signal ?? AbortSignal.timeout(5000) });
  };
  const peerOf = (name: string) => peers.find((peer) => peer.state.service === name);

  let pulling: Promise<void> | undefined;
  const pullOne = async (peer: (typeof peers)[number]) => {
    try {
      for (let round = 0; round < 20; round++) {
        const response = await peerFetch(peer, `/api/events?local=1&since=${peer.cursor}&limit=5000`);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const page = (await response.json()) as {
          service: string;
          boot: string;
          events: FlowEvent[];
          last: number;
          capabilities: { deadLetters: boolean; receipts: boolean; jobs?: boolean; queues?: boolean };
        };
        if (peer.boot !== undefined && peer.boot !== page.boot) {
          // The peer restarted: its positions start again.
          peer.cursor = 0;
          peer.boot = page.boot;
          index.forget(page.service);
          continue;
        }
        peer.boot = page.boot;
        for (const event of page.events) index.add(event);
        peer.cursor = page.events.length > 0 ? (page.events[page.events.length - 1] as FlowEvent).seq : peer.cursor;
        peer.state = { url: peer.url, service: page.service, ok: true, capabilities: page.capabilities };
        if (page.events.length < 5000) break;
      }
    } catch (error) {
      peer.state = { ...peer.state, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
  };
  const pull = (): Promise<void> => {
    pulling ??= Promise.all(peers.map(pullOne)).then(() => {
      pulling = undefined;
    });
    return pulling;
  };
  const timer = peers.length > 0 ? setInterval(() => void pull(), options.pollMs ?? 500) : undefined;
  timer?.unref();
  if (peers.length > 0) void pull();

  // Queue depth: samples of the last QUEUE_WINDOW_MS per known (topic, group), read from the broker.
  const pendingOf = options.broker?.pending?.bind(options.broker);
  const depths = pendingOf === undefined ? undefined : new Map<string, { topic: string; group: string; samples: [number, number][] }>();
  const knowQueue = (topic: string, group: string) => {
    const key = JSON.stringify([topic, group]);
    if (depths !== undefined && !depths.has(key) && depths.size < MAX_QUEUES) depths.set(key, { topic, group, samples: [] });
  };
  for (const queue of options.queues ?? []) knowQueue(queue.topic, queue.group);
  const unsubscribeQueues =
    depths === undefined
      ? undefined
      : options.recorder?.subscribe((event) => {
          if (event.kind === 'message.deliver' && event.topic !== undefined && event.group !== undefined)
            knowQueue(event.topic, event.group);
        });
  let sampling: Promise<void> | undefined;
  const sample = (): Promise<void> => {
    if (depths === undefined || pendingOf === undefined) return Promise.resolve();
    sampling ??= Promise.all(
      [...depths.values()].map(async (queue) => {
        const depth = await Promise.race([pendingOf(queue.topic, queue.group), idle(5000)]).catch(() => undefined);
        if (typeof depth !== 'number') return;
        const at = Date.now();
        queue.samples.push([at, depth]);
        while (queue.samples.length > 0 && (queue.samples[0] as [number, number])[0] < at - QUEUE_WINDOW_MS) queue.samples.shift();
      }),
    ).then(() => {
      sampling = undefined;
    });
    return sampling;
  };
  const depthTimer = depths === undefined ? undefined : setInterval(() => void sample(), options.queuePollMs ?? 2000);
  depthTimer?.unref();
  if (depths !== undefined) void sample();

  const streams = new Set<ServerResponse>();

  const authorised = (req: IncomingMessage, url: URL, res: ServerResponse): boolean => {
    if (options.token === undefined) {
      if (isLoopback(req.socket.remoteAddress)) return true;
      problem(res, 'SB_FORBIDDEN', 'the dashboard answers only on loopback unless it has a token');
      return false;
    }
    const given =
      bearer(req.headers.authorization) ?? cookie(req.headers.cookie, 'sb_dashboard') ?? url.searchParams.get('token') ?? undefined;
    if (given !== undefined && safeEqual(given, options.token)) {
      if (url.searchParams.has('token')) {
        res.setHeader(
          'set-cookie',
          `sb_dashboard=${encodeURIComponent(options.token)}; HttpOnly; SameSite=Strict; Path=${basePath || '/'}`,
        );
      }
      return true;
    }
    res.setHeader('www-authenticate', 'Bearer realm="switchboard-dashboard"');
    problem(res, 'SB_UNAUTHORIZED', 'the dashboard needs its token (Authorization: Bearer <token>, or ?token=)');
    return false;
  };

  const readJson = async (req: IncomingMessage, given: unknown): Promise<Record<string, unknown>> => {
    if (given !== undefined && given !== null && typeof given === 'object' && !Buffer.isBuffer(given))
      return given as Record<string, unknown>;
    let text: string;
    if (typeof given === 'string' || Buffer.isBuffer(given)) text = given.toString();
    else {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > 64 * 1024) throw new SwitchboardError('SB_BODY_TOO_LARGE', { detail: 'a dashboard request body is at most 64 KiB' });
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString();
    }
    if (text.trim() === '') return {};
    try {
      const value = JSON.parse(text) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    } catch {
      throw new SwitchboardError('SB_MALFORMED_JSON', { detail: 'the body must be a JSON object' });
    }
  };

  const localDeadLetters = async (query: URLSearchParams) => {
    if (options.deadLetters === undefined) return [];
    const status = query.get('status');
    const page = await options.deadLetters.list({
      limit: clampInt(query.get('limit'), 100, 1, 1000),
      ...(status && status !== 'all' ? { status: status as DeadLetterSummary['status'] } : {}),
      ...(query.get('messageId') ? { messageId: query.get('messageId') as string } : {}),
    });
    return page.items.map((item) => ({ ...item, service }));
  };

  const capabilities = {
    deadLetters: options.deadLetters !== undefined,
    receipts: options.receipts !== undefined,
    jobs: options.jobs !== undefined,
    queues: depths !== undefined,
  };

  /** Cross-site requests cannot change anything: a JSON body (so a browser asks first), from this origin. */
  const refuseCrossSite = (req: IncomingMessage, res: ServerResponse, what: string): boolean => {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new SwitchboardError('SB_UNSUPPORTED_MEDIA_TYPE', { detail: `a ${what} request is application/json` });
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null' && safeHost(origin) !== req.headers.host) {
      problem(res, 'SB_FORBIDDEN', `a ${what} from another origin (${origin}) is refused`);
      return true;
    }
    if (origin === 'null') {
      problem(res, 'SB_FORBIDDEN', `a ${what} from an opaque origin is refused`);
      return true;
    }
    return false;
  };

  const cancelJob = async (body: Record<string, unknown>) => {
    if (options.jobs === undefined) throw new SwitchboardError('SB_NOT_FOUND', { detail: `${service} has no job store` });
    if (typeof body.id !== 'string' || body.id === '') throw new SwitchboardError('SB_BAD_REQUEST', { detail: '`id` must name a job' });
    const id = body.id;
    const result = await options.jobs.cancel(id);
    switch (result.outcome) {
      case 'missing':
        throw new SwitchboardError('SB_NOT_FOUND', { detail: `${service} has no job ${id}` });
      case 'gone':
        throw new SwitchboardError('SB_JOB_GONE', { detail: `Job ${id} finished and its retention has passed` });
      case 'finished':
        throw new SwitchboardError('SB_JOB_FINISHED', { detail: `Job ${id} already ${result.job?.status ?? 'finished'}` });
      default:
        return { service, id, outcome: result.outcome, status: result.job?.status };
    }
  };

  /** What this service's job store says of these jobs (those it holds), as `JobLiveState`. */
  const liveJobs = async (ids: readonly string[]): Promise<JobLiveState[]> => {
    const store = options.jobs?.store;
    if (store === undefined) return [];
    const leaseMs = options.jobs?.runner?.leaseMs;
    const found = await Promise.all(ids.map((id) => store.get(id).catch(() => undefined)));
    const now = Date.now();
    const out: JobLiveState[] = [];
    for (const lookup of found) {
      if (lookup?.state !== 'found') continue;
      const job = lookup.job;
      const heartbeatAt = job.leaseExpiresAt !== undefined && leaseMs !== undefined ? job.leaseExpiresAt - leaseMs : undefined;
      out.push({
        jobId: job.id,
        service,
        status: job.status,
        ...(job.progress === undefined ? {} : { progress: job.progress }),
        ...(job.leaseOwner === undefined ? {} : { leaseOwner: job.leaseOwner }),
        ...(job.leaseExpiresAt === undefined ? {} : { leaseExpiresAt: job.leaseExpiresAt }),
        ...(heartbeatAt === undefined ? {} : { heartbeatAt, heartbeatAgeMs: Math.max(0, now - heartbeatAt) }),
        stuck: job.status === 'running' && job.leaseExpiresAt !== undefined && job.leaseExpiresAt <= now,
        attempts: job.attempts,
        maxAttempts: job.maxAttempts,
        cancelRequested: job.cancelRequested,
      });
    }
    return out;
  };

  /** The jobs seen, those in progress with what their store (this service's, or a peer's) says of them. */
  const jobsWithState = async (active: boolean) => {
    const jobs = index.jobs({ active });
    const open = jobs.filter((job) => !TERMINAL_JOB.has(job.status)).slice(0, MAX_LIVE_JOBS);
    const states = new Map<string, JobLiveState>();
    for (const state of await liveJobs(open.map((job) => job.jobId))) states.set(state.jobId, state);
    const rest = open.filter((job) => !states.has(job.jobId)).map((job) => job.jobId);
    if (rest.length > 0) {
      const query = rest.map((id) => `id=${encodeURIComponent(id)}`).join('&');
      await Promise.all(
        peers
          .filter((peer) => peer.state.capabilities?.jobs)
          .map(async (peer) => {
            try {
              const response = await peerFetch(peer, `/api/jobs/state?${query}`);
              const page = (await response.json()) as { jobs?: JobLiveState[] };
              for (const state of page.jobs ?? []) if (!states.has(state.jobId)) states.set(state.jobId, state);
            } catch {
              // Unreachable peer: its jobs show what the recorder saw; the info view says why.
            }
          }),
      );
    }
    return jobs.map((job) => {
      const state = states.get(job.jobId);
      if (state === undefined) return job;
      const { jobId: _id, service: heldBy, ...rest } = state;
      return { ...job, ...rest, heldBy };
    });
  };

  const replay = async (body: Record<string, unknown>) => {
    if (options.deadLetters === undefined) throw new SwitchboardError('SB_NOT_FOUND', { detail: `${service} has no dead-letter store` });
    const dryRun = body.dryRun === true;
    const limit = clampInt(typeof body.limit === 'number' ? String(body.limit) : null, 100, 1, 1000);
    let ids: string[];
    if (Array.isArray(body.ids)) {
      if (!body.ids.every((id) => typeof id === 'string') || body.ids.length === 0) {
        throw new SwitchboardError('SB_BAD_REQUEST', { detail: '`ids` must be a non-empty array of dead-letter ids' });
      }
      ids = (body.ids as string[]).slice(0, limit);
    } else if (body.all === true) {
      const page = await options.deadLetters.list({ status: 'pending', limit });
      ids = page.items.map((item) => item.id);
    } else {
      throw new SwitchboardError('SB_BAD_REQUEST', { detail: 'say which dead letters to replay: `ids` or `all: true`' });
    }
    if (dryRun) {
      const entries = await Promise.all(ids.map((id) => options.deadLetters?.get(id)));
      const pending = entries.filter((entry) => entry !== undefined && entry.status === 'pending') as StoredDeadLetter[];
      return {
        service,
        dryRun: true,
        wouldReplay: pending.length,
        ids: pending.map((entry) => entry.id),
        messageIds: pending.map((entry) => entry.messageId),
        topics: pending.map((entry) => entry.topic),
      };
    }
    if (ids.length === 0) return { service, dryRun: false, replayed: 0, ids: [], messageIds: [] };
    const result = await options.deadLetters.replay({ ids });
    return { service, dryRun: false, replayed: result.replayed, ids: result.ids, messageIds: result.messageIds };
  };

  const api = async (req: IncomingMessage, res: ServerResponse, path: string, url: URL, given: unknown): Promise<void> => {
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    if (path === '/api/info' && method === 'GET') {
      return json(res, {
        service,
        boot: bootId,
        recorder: options.recorder?.stats() ?? null,
        index: { events: index.size, flows: index.flowCount, capacity: index.capacity },
        capabilities,
        peers: peers.map((peer) => peer.state),
        services: [service, ...peers.map((peer) => peer.state.service).filter((name) => name !== undefined)],
      });
    }
    if (path === '/api/events' && method === 'GET') {
      const since = clampInt(q.get('since'), 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = clampInt(q.get('limit'), 1000, 1, 10_000);
      if (q.get('local') === '1') {
        return json(res, {
          service,
          boot: bootId,
          events: options.recorder?.events({ since, limit }) ?? [],
          last: options.recorder?.stats().lastSeq ?? 0,
          capabilities,
        });
      }
      const page = index.since(since, limit);
      return json(res, { events: page.map((item) => ({ ...item.event, g: item.g })), last: index.last });
    }
    if (path === '/api/stream' && method === 'GET') return stream(req, res, q);
    if (path === '/api/flows' && method === 'GET') {
      await maybePull(q);
      return json(res, {
        ...index.list({
          limit: clampInt(q.get('limit'), 100, 1, 1000),
          ...(q.get('q') ? { q: q.get('q') as string } : {}),
          ...(q.get('service') ? { service: q.get('service') as string } : {}),
          ...(q.get('pattern') ? { pattern: q.get('pattern') as string } : {}),
          ...(q.get('status') ? { status: q.get('status') as string } : {}),
        }),
        last: index.last,
      });
    }
    /** A same-origin JSON action on one service: done here, or passed on to the peer that owns it. */
    const ownerAction = async (route: string, kind: string, local: (body: Record<string, unknown>) => Promise<unknown>) => {
      if (refuseCrossSite(req, res, kind)) return;
      const body = await readJson(req, given);
      const owner = typeof body.service === 'string' ? body.service : service;
      if (owner === service) return json(res, await local(body));
      const peer = peerOf(owner);
      if (peer === undefined) return problem(res, 'SB_NOT_FOUND', `no peer named ${owner}`);
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
      return relay(res, await peerFetch(peer, route, init));
    };
    if (path === '/api/flow' && method === 'GET') {
      await maybePull(q);
      const flow = index.flow(q.get('key') ?? '');
      if (flow === undefined) return problem(res, 'SB_NOT_FOUND', 'no recorded flow has that id');
      return json(res, flow);
    }
    if (path === '/api/jobs' && method === 'GET') return json(res, { jobs: await jobsWithState(q.get('active') === '1') });
    if (path === '/api/jobs/state' && method === 'GET') return json(res, { jobs: await liveJobs(q.getAll('id').slice(0, MAX_LIVE_JOBS)) });
    if (path === '/api/jobs/cancel' && method === 'POST') return ownerAction('/api/jobs/cancel', 'cancel', cancelJob);
    if (path === '/api/metrics' && method === 'GET') return json(res, index.metrics(clampInt(q.get('seconds'), 60, 5, 600), Date.now()));
    if (path === '/api/dead-letters' && method === 'GET') {
      const wanted = q.get('service');
      const forward = new URLSearchParams(q);
      forward.delete('service');
      const results: unknown[] = [];
      const errors: { service: string; error: string }[] = [];
      if (wanted === null || wanted === service) results.push(...(await localDeadLetters(q)));
      for (const peer of peers) {
        if (!peer.state.capabilities?.deadLetters) continue;
        if (wanted !== null && wanted !== peer.state.service) continue;
        try {
          const response = await peerFetch(peer, `/api/dead-letters?${forward}&service=${encodeURIComponent(peer.state.service ?? '')}`);
          const page = (await response.json()) as { items?: unknown[] };
          results.push(...(page.items ?? []));
        } catch (error) {
          errors.push({ service: peer.state.service ?? peer.url, error: error instanceof Error ? error.message : String(error) });
        }
      }
      results.sort((a, b) => (b as DeadLetterSummary).deadLetteredAt - (a as DeadLetterSummary).deadLetteredAt);
      return json(res, { items: results, errors });
    }
    if (path.startsWith('/api/dead-letters/') && path !== '/api/dead-letters/replay' && method === 'GET') {
      const id = decodeURIComponent(path.slice('/api/dead-letters/'.length));
      const owner = q.get('service') ?? service;
      if (owner !== service) {
        const peer = peerOf(owner);
        if (peer === undefined) return problem(res, 'SB_NOT_FOUND', `no peer named ${owner}`);
        return relay(res, await peerFetch(peer, `/api/dead-letters/${encodeURIComponent(id)}?service=${encodeURIComponent(owner)}`));
      }
      const entry = await options.deadLetters?.get(id);
      if (entry === undefined) return problem(res, 'SB_NOT_FOUND', 'no dead letter with that id');
      const { body, ...rest } = entry;
      return json(res, {
        ...rest,
        service,
        body: options.showBodies
          ? Buffer.from(body)
              .toString('utf8')
              .slice(0, 64 * 1024)
          : undefined,
        bodyShown: options.showBodies === true,
      });
    }
    if (path === '/api/dead-letters/replay' && method === 'POST') return ownerAction('/api/dead-letters/replay', 'replay', replay);
    if (path.startsWith('/api/receipts/') && method === 'GET') {
      const messageId = decodeURIComponent(path.slice('/api/receipts/'.length));
      const receipts: { service: string; receipt: unknown }[] = [];
      if (options.receipts !== undefined) {
        const source = q.get('source');
        const receipt = await options.receipts
          .get(messageId, source ? { source } : {})
          .catch((error: unknown) => ({ error: String(error) }));
        if (receipt !== undefined) receipts.push({ service, receipt });
      }
      if (q.get('local') !== '1') {
        await Promise.all(
          peers
            .filter((peer) => peer.state.capabilities?.receipts)
            .map(async (peer) => {
              try {
                const response = await peerFetch(peer, `/api/receipts/${encodeURIComponent(messageId)}?local=1&${q}`);
                const page = (await response.json()) as { receipts?: { service: string; receipt: unknown }[] };
                receipts.push(...(page.receipts ?? []));
              } catch {
                // Unreachable peer: its receipts are missing from the answer; the info view says why.
              }
            }),
        );
      }
      const flow = index.flow(`m:${messageId}`);
      return json(res, {
        messageId,
        receipts,
        deliveries: (flow?.events ?? []).filter((event) => event.messageId === messageId),
        flow: flow?.summary.key ?? null,
      });
    }
    if (path === '/api/queues' && method === 'GET') {
      if (q.get('fresh') === '1') await sample();
      const queues = [...(depths?.values() ?? [])].map((queue) => ({ service, ...queue }));
      if (q.get('local') !== '1') {
        await Promise.all(
          peers
            .filter((peer) => peer.state.capabilities?.queues)
            .map(async (peer) => {
              try {
                const response = await peerFetch(peer, `/api/queues?local=1${q.get('fresh') === '1' ? '&fresh=1' : ''}`);
                const page = (await response.json()) as { queues?: typeof queues };
                queues.push(...(page.queues ?? []));
              } catch {
                // Unreachable peer: its queues are missing from the answer; the info view says why.
              }
            }),
        );
      }
      return json(res, { queues, windowMs: QUEUE_WINDOW_MS });
    }
    if (path.startsWith('/api/')) return problem(res, 'SB_NOT_FOUND', `no dashboard API at ${method} ${path}`);
  };

  const maybePull = async (q: URLSearchParams) => {
    if (q.get('fresh') === '1' && peers.length > 0) await pull();
  };

  const stream = (req: IncomingMessage, res: ServerResponse, q: URLSearchParams) => {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const resume = req.headers['last-event-id'] ?? q.get('since');
    let since = clampInt(typeof resume === 'string' ? resume : null, index.last, 0, Number.MAX_SAFE_INTEGER);
    if (resume === undefined || resume === null) since = Math.max(0, index.last - clampInt(q.get('backlog'), 0, 0, 1000));
    res.write('retry: 2000\n\n');
    const send = (event: FlowEvent, g: number) => {
      res.write(`id: ${g}\nevent: flow-event\ndata: ${JSON.stringify(event)}\n\n`);
    };
    for (const item of index.since(since, 10_000)) send(item.event, item.g);
    const stop = index.subscribe(send);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    streams.add(res);
    const end = () => {
      stop();
      clearInterval(heartbeat);
      streams.delete(res);
    };
    req.on('close', end);
    res.on('close', end);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, given?: unknown): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) return false;
    const path = url.pathname.slice(basePath.length) || '/';
    try {
      if (!authorised(req, url, res)) return true;
      if (path === '/' && url.pathname === basePath) {
        res.writeHead(308, { location: `${basePath}/${url.search}` });
        res.end();
        return true;
      }
      const asset = ASSETS[path];
      if (asset !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
        const extension = asset.slice(asset.lastIndexOf('.') + 1);
        const bytes = assets.get(asset) as Buffer;
        res.writeHead(200, {
          'content-type': TYPES[extension] ?? 'application/octet-stream',
          'content-length': bytes.length,
          'cache-control': 'no-cache',
          'content-security-policy': CSP,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
        });
        res.end(req.method === 'HEAD' ? undefined : bytes);
        return true;
      }
      if (path.startsWith('/api/')) {
        await api(req, res, path, url, given);
        return true;
      }
      problem(res, 'SB_NOT_FOUND', `nothing at ${url.pathname}`);
    } catch (error) {
      if (!res.headersSent) {
        if (error instanceof SwitchboardError) sendProblem(res, error);
        else problem(res, 'SB_INTERNAL', 'the dashboard failed to answer');
      } else res.end();
    }
    return true;
  };

  const dashboard: Dashboard = {
    basePath,
    index,
    handle,
    listener: (req, res) => {
      void handle(req, res).then((handled) => {
        if (!handled) problem(res, 'SB_NOT_FOUND', `nothing at ${req.url ?? '/'}`);
      });
    },
    route: {
      methods: ['GET', 'HEAD', 'POST'],
      path: `${basePath}/`,
      async handle(req, res) {
        await handle(req, res);
      },
    },
    express: (req, res, next) => {
      handle(req, res, req.body).then((handled) => {
        if (!handled) next();
      }, next);
    },
    fastify: async (instance) => {
      const handler = async (request: { raw: IncomingMessage; body?: unknown }, reply: { raw: ServerResponse; hijack(): void }) => {
        reply.hijack();
        await handle(request.raw, reply.raw, request.body);
      };
      instance.route({ method: ['GET', 'HEAD', 'POST'], url: basePath, handler });
      instance.route({ method: ['GET', 'HEAD', 'POST'], url: `${basePath}/*`, handler });
    },
    pull,
    peers: () => peers.map((peer) => peer.state),
    async close() {
      if (timer !== undefined) clearInterval(timer);
      if (depthTimer !== undefined) clearInterval(depthTimer);
      unsubscribeQueues?.();
      await sampling;
      unsubscribe?.();
      for (const res of streams) res.end();
      streams.clear();
      await pulling;
    },
  };
  return dashboard;
}

function json(res: ServerResponse, value: unknown, status = 200): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function problem(res: ServerResponse, code: 'SB_FORBIDDEN' | 'SB_UNAUTHORIZED' | 'SB_NOT_FOUND' | 'SB_INTERNAL', detail: string): void {
  sendProblem(res, new SwitchboardError(code, { detail }));
}

function sendProblem(res: ServerResponse, error: SwitchboardError): void {
  const document = error.toProblem();
  const body = JSON.stringify(document);
  res.writeHead(document.status ?? 500, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function relay(res: ServerResponse, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  res.writeHead(response.status, {
    'content-type': response.headers.get('content-type') ?? 'application/json',
    'content-length': body.length,
  });
  res.end(body);
}

function clampInt(value: string | null, fallback: number, min: number, max: number): number {
  if (value === null || value === '' || !/^\d+$/.test(value)) return fallback;
  return Math.min(max, Math.max(min, Number(value)));
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match?.[1];
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

function safeHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
