import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobLookup, JobRecord } from '@switchboard/core';
import { isFinishedStatus, SwitchboardError } from '@switchboard/core';
import { sendJson, sendProblem } from '../server/respond.js';
import type { HttpRoute, RouteContext } from '../server/types.js';
import { etagOf, JOB_ID, matchesEtag, statusDocument } from './document.js';
import { parsePrefer, waitParameter } from './prefer.js';
import type { JobsRuntime } from './shared.js';
import { announce, monitorPath, report, unavailable } from './shared.js';
import { streamEvents } from './sse.js';

const notFound = (id: string) => new SwitchboardError('SB_NOT_FOUND', { detail: `No job ${id}` });

/**
 * The status monitor: `GET {base}/jobs/{id}` (JSON, long-poll, or server-sent events),
 * `GET {base}/jobs/{id}/result`, `DELETE {base}/jobs/{id}` (cancel).
 */
export function monitorRoute(runtime: JobsRuntime): HttpRoute {
  return {
    methods: ['GET', 'HEAD', 'DELETE'],
    path: runtime.path,
    handle: (req, res, context) => handleMonitor(runtime, req, res, context),
  };
}

async function handleMonitor(runtime: JobsRuntime, req: IncomingMessage, res: ServerResponse, context: RouteContext): Promise<void> {
  const rest = context.path.slice(runtime.path.length);
  const slash = rest.indexOf('/');
  const id = slash === -1 ? rest : rest.slice(0, slash);
  const sub = slash === -1 ? '' : rest.slice(slash + 1);
  // Malformed ids and unknown sub-resources are answered without touching the store.
  if (!JOB_ID.test(id) || (sub !== '' && sub !== 'result') || (sub === 'result' && req.method === 'DELETE')) {
    sendProblem(res, notFound(id));
    return;
  }
  const job = await visibleJob(runtime, id, context.principal);
  const monitor = monitorPath(runtime, req, context.service.basePath, id);
  if (sub === 'result') {
    sendResult(runtime, res, job, monitor);
    return;
  }
  if (req.method === 'DELETE') {
    await cancel(runtime, req, res, job, monitor, context);
    return;
  }
  if (/\btext\/event-stream\b/.test(req.headers.accept ?? '')) {
    await streamEvents(runtime, req, res, job, monitor);
    return;
  }
  await sendStatus(runtime, req, res, job, monitor, context.query);
}

/** The job, when it exists and the caller may see it; another submitter's job is a 404 as well. */
async function visibleJob(runtime: JobsRuntime, id: string, principal: string | undefined): Promise<JobRecord> {
  let lookup: JobLookup;
  try {
    lookup = await runtime.store.get(id);
  } catch (error) {
    throw unavailable(runtime, error);
  }
  if (lookup.state === 'gone') {
    throw new SwitchboardError('SB_JOB_GONE', { detail: `Job ${id} finished and its retention has passed` });
  }
  if (lookup.state === 'missing' || (lookup.job.owner !== null && lookup.job.owner !== principal)) throw notFound(id);
  return lookup.job;
}

function statusHeaders(runtime: JobsRuntime, job: JobRecord): Record<string, string> {
  return {
    etag: etagOf(job),
    'cache-control': 'no-cache',
    ...(isFinishedStatus(job.status) ? {} : { 'retry-after': String(runtime.retryAfterSeconds) }),
  };
}

async function sendStatus(
  runtime: JobsRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  found: JobRecord,
  monitor: string,
  query: string,
): Promise<void> {
  let job = found;
  const requested = waitParameter(query) ?? parsePrefer(req.headers.prefer).wait;
  const wait = requested === undefined ? 0 : Math.min(requested, runtime.maxWaitSeconds);
  const ifNoneMatch = req.headers['if-none-match'];
  // Long-poll: wait for a change from the version the caller knows (its If-None-Match), or from
  // the current one when it names none. A caller with a stale version is answered at once.
  if (wait > 0 && !isFinishedStatus(job.status) && (ifNoneMatch === undefined || matchesEtag(ifNoneMatch, job))) {
    job = await waitForChange(runtime, res, job, wait * 1000);
  }
  const headers = statusHeaders(runtime, job);
  if (wait > 0) headers['preference-applied'] = `wait=${wait}`;
  if (job.status === 'succeeded') {
    sendJson(res, 303, statusDocument(job, monitor), { ...headers, location: `${monitor}/result` });
    return;
  }
  if (matchesEtag(ifNoneMatch, job)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  sendJson(res, 200, statusDocument(job, monitor), headers);
}

async function waitForChange(runtime: JobsRuntime, res: ServerResponse, job: JobRecord, ms: number): Promise<JobRecord> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  try {
    const lookup = await runtime.store.waitForChange(job.id, job.version, ms, AbortSignal.any([gone.signal, runtime.closing.signal]));
    return lookup.state === 'found' ? lookup.job : job;
  } catch (error) {
    if (!gone.signal.aborted && !runtime.closing.signal.aborted) report(runtime, error, { jobId: job.id, phase: 'long-poll' });
    return job;
  } finally {
    res.removeListener('close', onClose);
  }
}

function sendResult(runtime: JobsRuntime, res: ServerResponse, job: JobRecord, monitor: string): void {
  switch (job.status) {
    case 'succeeded':
      sendJson(res, 200, job.result ?? null, {
        etag: etagOf(job),
        'cache-control': 'private, max-age=0',
        'content-location': `${monitor}/result`,
      });
      return;
    case 'failed':
      sendProblem(res, job.error ?? new SwitchboardError('SB_JOB_FAILED', { detail: `Job ${job.id} failed` }).toProblem());
      return;
    case 'canceled':
      sendProblem(res, new SwitchboardError('SB_JOB_CANCELED', { detail: `Job ${job.id} was canceled` }));
      return;
    case 'queued':
    case 'running':
      sendProblem(res, new SwitchboardError('SB_CONFLICT', { detail: `Job ${job.id} is ${job.status}; follow its monitor` }), {
        location: monitor,
        'retry-after': String(runtime.retryAfterSeconds),
      });
      return;
  }
}

async function cancel(
  runtime: JobsRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  job: JobRecord,
  monitor: string,
  context: RouteContext,
): Promise<void> {
  let result: Awaited<ReturnType<typeof runtime.store.cancel>>;
  try {
    result = await runtime.store.cancel(job.id);
  } catch (error) {
    throw unavailable(runtime, error);
  }
  switch (result.outcome) {
    case 'missing':
      throw notFound(job.id);
    case 'gone':
      throw new SwitchboardError('SB_JOB_GONE', { detail: `Job ${job.id} finished and its retention has passed` });
    case 'finished':
      sendProblem(res, new SwitchboardError('SB_JOB_FINISHED', { detail: `Job ${job.id} already ${result.job.status}` }), {
        location: monitor,
      });
      return;
    case 'canceled':
      announce(runtime, result.job, req, context.service.basePath);
      sendJson(res, 200, statusDocument(result.job, monitor), statusHeaders(runtime, result.job));
      return;
    case 'cancel-requested':
      // The worker running it notices at its next heartbeat; one in this process stops at once.
      runtime.runner?.cancel(job.id);
      sendJson(res, 202, statusDocument(result.job, monitor), { ...statusHeaders(runtime, result.job), location: monitor });
      return;
  }
}
