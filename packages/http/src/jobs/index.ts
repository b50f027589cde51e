export { createJobsClient } from './client.js';
export type {
  JobRef,
  JobRequestInfo,
  JobRequestOptions,
  JobsClient,
  JobsClientOptions,
  SubmitOptions,
  SubmittedJob,
  WaitDefaults,
  WaitOptions,
  WaitTransport,
} from './client-types.js';
export { JobHandlerContext } from './context.js';
export type { JobStatusDocument } from './document.js';
export type { HttpJobs } from './enable.js';
export { enableJobs } from './enable.js';
export type { JobOperationOptions, JobsOptions, WorkerOptions } from './options.js';
export type { JobRunnerOptions } from './runner.js';
export { JobRunner } from './runner.js';
