import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobRecord } from '@switchboard/core';
import { isFinishedStatus } from '@switchboard/core';
import { statusDocument } from './document.js';
import type { JobsRuntime } from './shared.js';
import { report } from './shared.js';

/**
 * Server-sent events on the status monitor: one `status` event per change (`id` = the job's
 * version, `data` = the status document), a comment line as heartbeat while nothing changes, and
 * the end of the stream after the event of a final state. `Last-Event-ID` resumes after that version.
 */
export async function streamEvents(
  runtime: JobsRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  found: JobRecord,
  monitor: string,
): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const closed = new AbortController();
  const onClose = () => closed.abort();
  res.once('close', onClose);
  const signal = AbortSignal.any([closed.signal, runtime.closing.signal]);
  const lastEventId = Number(req.headers['last-event-id']);
  let sent = Number.isInteger(lastEventId) && lastEventId > 0 ? lastEventId : 0;
  let job = found;
  res.write(`retry: ${runtime.retryAfterSeconds * 1000}\n\n`);
  try {
    while (!signal.aborted) {
      if (job.version > sent) {
        res.write(`id: ${job.version}\nevent: status\ndata: ${JSON.stringify(statusDocument(job, monitor))}\n\n`);
        sent = job.version;
      }
      if (isFinishedStatus(job.status)) break;
      const lookup = await runtime.store.waitForChange(job.id, sent, runtime.sseHeartbeatMs, signal);
      if (lookup.state !== 'found') {
        res.write(`event: gone\ndata: ${JSON.stringify({ id: job.id })}\n\n`);
        break;
      }
      if (lookup.job.version <= sent) res.write(': heartbeat\n\n');
      job = lookup.job;
    }
  } catch (error) {
    if (!signal.aborted) report(runtime, error, { jobId: job.id, phase: 'events' });
  } finally {
    res.removeListener('close', onClose);
    res.end();
  }
}
