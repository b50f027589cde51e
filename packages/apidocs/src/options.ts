import type { AnyContract } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/**
 * Which operations run as durable jobs (the async form: 202 + status monitor), as `enableJobs`
 * was told. `true`: every operation not declared `mode: 'sync'`; a list: those; an object: the
 * same shape as `enableJobs`' options (`operations` with `false` to keep one inline).
 */
export type JobsDescription =
  | boolean
  | readonly string[]
  | {
      /** As `JobsOptions.operations`: absent means every operation; `false` keeps one inline. */
      readonly operations?: Readonly<Record<string, unknown>>;
      /** Where the monitors live below the base path. Default `/jobs/`. */
      readonly path?: string;
      /** Completion callbacks (`Switchboard-Callback`) are configured. Default false. */
      readonly callbacks?: boolean | object;
    };

/** The settings of one contract's jobs, resolved. */
export interface ResolvedJobs {
  /** The operations that run as jobs. */
  readonly operations: readonly string[];
  /** `/jobs/`, with slashes on both ends. */
  readonly path: string;
  readonly callbacks: boolean;
}

function jobsPath(path: string | undefined): string {
  const value = path ?? '/jobs/';
  const withSlash = value.startsWith('/') ? value : `/${value}`;
  return withSlash.endsWith('/') ? withSlash : `${withSlash}/`;
}

/** The job operations of `contract`, by the rules `enableJobs` applies (an operation declared `mode: 'sync'` never is one). */
export function resolveJobs(contract: AnyContract, jobs: JobsDescription | undefined): ResolvedJobs {
  const names = Object.keys(contract.operations);
  const runnable = (name: string) => contract.operations[name]?.mode !== 'sync';
  if (jobs === undefined || jobs === false) return { operations: [], path: '/jobs/', callbacks: false };
  if (jobs === true) return { operations: names.filter(runnable), path: '/jobs/', callbacks: false };
  if (Array.isArray(jobs)) {
    return { operations: names.filter((name) => jobs.includes(name) && runnable(name)), path: '/jobs/', callbacks: false };
  }
  const settings = jobs as Exclude<JobsDescription, boolean | readonly string[]>;
  const own = settings.operations;
  for (const name of Object.keys(own ?? {})) {
    if (!Object.hasOwn(contract.operations, name)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Jobs configured for ${name}, which ${contract.name} does not have` });
    }
  }
  return {
    operations: names.filter((name) => runnable(name) && own?.[name] !== false),
    path: jobsPath(settings.path),
    callbacks: settings.callbacks !== undefined && settings.callbacks !== false,
  };
}

/** Checks that every name in a list of job operations exists in one of the contracts. */
export function checkJobNames(contracts: readonly AnyContract[], jobs: JobsDescription | undefined): void {
  if (!Array.isArray(jobs)) return;
  for (const name of jobs as readonly string[]) {
    if (!contracts.some((contract) => Object.hasOwn(contract.operations, name))) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `No operation ${name} in ${contracts.map((contract) => contract.name).join(', ')} to run as a job`,
      });
    }
  }
}

export function isContract(value: unknown): value is AnyContract {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'contract' &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { operations?: unknown }).operations === 'object'
  );
}
