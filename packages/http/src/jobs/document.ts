import type { JobCallback, JobRecord, JobStatus, ProblemDetails } from '@switchboard/core';
import { isFinishedStatus } from '@switchboard/core';

/** What the status monitor answers (and what server-sent events and webhooks carry). */
export interface JobStatusDocument {
  readonly id: string;
  readonly operation: string;
  readonly status: JobStatus;
  /** Last progress the handler reported (`ctx.progress`). */
  readonly progress?: unknown;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** When a finished job stops being readable (then the monitor answers 410). */
  readonly expiresAt?: string;
  /** Runs so far (1 while the first run is on). */
  readonly attempts: number;
  /** RFC 9457 problem of a failed or canceled job (of the last attempt while a retry is queued). */
  readonly error?: ProblemDetails;
  /** Where the result is, once `succeeded`. */
  readonly resultUrl?: string;
  /** Delivery state of the completion callback, when one was given. */
  readonly callback?: {
    readonly state: JobCallback['state'];
    readonly attempts: number;
    readonly lastAttemptAt?: string;
    readonly lastError?: string;
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The public view of a job. `monitorPath` is the job's status monitor (`{base}/jobs/{id}`). */
export function statusDocument(job: JobRecord, monitorPath: string): JobStatusDocument {
  const callback = job.callback;
  return {
    id: job.id,
    operation: job.operation,
    status: job.status,
    ...(job.progress === undefined ? {} : { progress: job.progress }),
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    ...(job.startedAt === undefined ? {} : { startedAt: iso(job.startedAt) }),
    ...(job.finishedAt === undefined ? {} : { finishedAt: iso(job.finishedAt) }),
    ...(job.expiresAt === undefined ? {} : { expiresAt: iso(job.expiresAt) }),
    attempts: job.attempts,
    ...(job.error === undefined || job.status === 'succeeded' ? {} : { error: job.error }),
    ...(job.status === 'succeeded' ? { resultUrl: `${monitorPath}/result` } : {}),
    ...(callback === undefined
      ? {}
      : {
          callback: {
            state: callback.state,
            attempts: callback.attempts,
            ...(callback.lastAttemptAt === undefined ? {} : { lastAttemptAt: iso(callback.lastAttemptAt) }),
            ...(callback.lastError === undefined ? {} : { lastError: callback.lastError }),
          },
        }),
  };
}

/** Strong entity tag of a job's state: its version. */
export function etagOf(job: JobRecord): string {
  return `"${job.version}"`;
}

/** Versions named by an `If-None-Match` header (`*` matches any). */
export function matchesEtag(header: string | undefined, job: JobRecord): boolean {
  if (header === undefined) return false;
  const wanted = etagOf(job);
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed === wanted || trimmed === `W/${wanted}`;
  });
}

export { isFinishedStatus };

/** Job ids are 128 random bits in base64url (`newSecretId`); anything else is not looked up. */
export const JOB_ID = /^[A-Za-z0-9_-]{16,64}$/;
