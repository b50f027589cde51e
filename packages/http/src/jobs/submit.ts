import { createHash } from 'node:crypto';
import type { JobRecord } from '@switchboard/core';
import { isFinishedStatus, SwitchboardError } from '@switchboard/core';
import type { HttpAnswer, OperationCall, OperationInterceptor } from '../server/types.js';
import { storedIdempotencyKey } from './context.js';
import { statusDocument } from './document.js';
import { parsePrefer } from './prefer.js';
import type { JobsRuntime } from './shared.js';
import { monitorPath, unavailable } from './shared.js';

const PROBLEM_TYPE = 'application/problem+json';

/**
 * The submit side: an operation call that asks for `Prefer: respond-async` (or whose operation is
 * declared `mode: 'async'`) becomes a job, answered `202 Accepted` + `Location` + `Retry-After` +
 * status document. With `Prefer: wait=N`, a job that finishes within N seconds is answered inline.
 */
export function submitInterceptor(runtime: JobsRuntime): OperationInterceptor {
  return async (call) => {
    const settings = runtime.operations.get(call.operation);
    const headers = call.req.headers;
    const prefer = parsePrefer(headers.prefer);
    const callback = headers['switchboard-callback'] as string | undefined;
    const asJob = settings !== undefined && (call.definition.mode === 'async' || prefer.respondAsync);
    if (!asJob) {
      if (callback !== undefined) {
        throw new SwitchboardError('SB_BAD_REQUEST', {
          detail: 'Switchboard-Callback needs a call that runs as a job (Prefer: respond-async)',
        });
      }
      return undefined;
    }
    if (callback !== undefined) {
      if (runtime.notifier === undefined)
        throw new SwitchboardError('SB_CALLBACK_NOT_ALLOWED', { detail: 'This service sends no callbacks' });
      runtime.notifier.check(callback);
    }

    const key = call.context.idempotencyKey;
    // A free slot of the local worker takes the new job at once, without a claim query.
    const runner = runtime.runner;
    const claimFor = runner?.reserve(call.operation);
    let created: Awaited<ReturnType<typeof runtime.store.create>>;
    try {
      created = await runtime.store.create({
        operation: call.operation,
        input: call.input,
        owner: call.context.principal ?? null,
        ...(key === undefined
          ? {}
          : { idempotencyKey: storedIdempotencyKey(call.operation, key), requestHash: inputHash(call.operation, call.input) }),
        maxAttempts: settings.maxAttempts,
        ...(settings.retentionMs === undefined ? {} : { retentionMs: settings.retentionMs }),
        ...(call.context.traceparent === undefined ? {} : { traceparent: call.context.traceparent }),
        ...(call.context.tracestate === undefined ? {} : { tracestate: call.context.tracestate }),
        ...(callback === undefined ? {} : { callbackUrl: callback }),
        maxQueued: settings.maxQueued,
        ...(claimFor === undefined ? {} : { claimFor }),
      });
    } catch (error) {
      if (claimFor !== undefined) runner?.adopt(undefined);
      throw unavailable(runtime, error);
    }
    if (claimFor !== undefined) runner?.adopt(created.outcome === 'created' ? created.claim : undefined);
    switch (created.outcome) {
      case 'full':
        throw new SwitchboardError('SB_OVERLOADED', {
          detail: `The queue of ${call.operation} is full`,
          retryAfterMs: runtime.retryAfterSeconds * 1000,
        });
      case 'mismatch':
        throw new SwitchboardError('SB_IDEMPOTENCY_KEY_REUSED', { detail: 'This Idempotency-Key was used with another input' });
      case 'created':
        if (created.claim === undefined) runtime.runner?.wake();
        break;
      case 'existing':
        break;
    }

    let job = created.job;
    const wait = prefer.wait === undefined ? 0 : Math.min(prefer.wait, runtime.maxWaitSeconds);
    if (wait > 0 && !isFinishedStatus(job.status)) job = await waitForFinish(runtime, job, wait * 1000, call);
    const monitor = monitorPath(runtime, call.req, call.service.basePath, job.id);
    if (isFinishedStatus(job.status) && wait > 0) return inline(job, `wait=${wait}`);
    return {
      status: 202,
      headers: {
        location: monitor,
        'content-location': monitor,
        'retry-after': String(runtime.retryAfterSeconds),
        ...(prefer.respondAsync ? { 'preference-applied': 'respond-async' } : {}),
        'cache-control': 'no-store',
      },
      body: statusDocument(job, monitor),
    };
  };
}

/** SHA-256 of the operation and its validated input: a retry with another input is refused. */
function inputHash(operation: string, input: unknown): string {
  return createHash('sha256')
    .update(operation)
    .update('\n')
    .update(JSON.stringify(input) ?? 'null')
    .digest('base64url');
}

/** Waits for the job to finish, at most `ms` (and never past the call's deadline). */
async function waitForFinish(runtime: JobsRuntime, job: JobRecord, ms: number, call: OperationCall): Promise<JobRecord> {
  const until = Math.min(Date.now() + ms, call.context.deadline ?? Number.POSITIVE_INFINITY);
  let current = job;
  const signal = AbortSignal.any([runtime.closing.signal, call.context.signal]);
  while (!isFinishedStatus(current.status)) {
    const left = until - Date.now();
    if (left <= 0 || signal.aborted) break;
    try {
      const lookup = await runtime.store.waitForChange(current.id, current.version, left, signal);
      if (lookup.state !== 'found') break;
      current = lookup.job;
    } catch {
      // Aborted or the store failed: the job exists, so the caller still gets its monitor.
      break;
    }
  }
  return current;
}

/** The answer of a job that finished within `Prefer: wait`: what a synchronous call would answer. */
function inline(job: JobRecord, applied: string): HttpAnswer {
  const headers = { 'preference-applied': applied };
  if (job.status === 'succeeded') return { status: 200, headers, body: job.result ?? null };
  const problem =
    job.error ??
    new SwitchboardError(job.status === 'canceled' ? 'SB_JOB_CANCELED' : 'SB_JOB_FAILED', {
      detail: `Job ${job.id} ${job.status}`,
    }).toProblem();
  return { status: problem.status, headers, body: problem, contentType: PROBLEM_TYPE };
}
