import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { dashboardGet, dashboardUrl } from '../dashboard.js';
import { CliError } from '../io.js';
import { openJobStore } from '../stores.js';

interface JobsFlags {
  readonly store?: string;
  readonly operation?: string;
  readonly service?: string;
  readonly all?: boolean;
  readonly token?: string;
  readonly json?: boolean;
}

/** A job as a dashboard lists it (`GET api/jobs`; see `@switchboard/dashboard`'s `JobSummary`). */
interface ListedJob {
  readonly jobId: string;
  readonly service: string;
  readonly operation?: string;
  readonly status: string;
  readonly submittedAt: number;
  readonly updatedAt: number;
  readonly polls: number;
  readonly [field: string]: unknown;
}

/** Fields every line shows in its columns; any other field of a listed job follows as `name=value`. */
const SHOWN = new Set(['jobId', 'service', 'operation', 'status', 'submittedAt', 'updatedAt', 'polls', 'flow']);

/**
 * `switchboard jobs <url>`: the jobs a service's dashboard (and its peers') saw, in progress unless
 * `--all`; `switchboard jobs --store <url>`: how many jobs a job store holds per state.
 */
export function register(program: Command, context: CommandContext): void {
  const { io } = context;
  program
    .command('jobs')
    .description("Jobs in progress from a service's dashboard (<url>), or counted in a job store (--store)")
    .argument('[url]', 'the service (http://127.0.0.1:4002) or its dashboard (…/_switchboard)')
    .option('--store <url>', 'count in a job store instead: sqlite:<file>, postgres://…, redis://… (env SWITCHBOARD_JOBS)')
    .option('--operation <name>', 'only this operation')
    .option('--service <name>', 'with <url>: only jobs of this service')
    .option('--all', 'with <url>: finished jobs too')
    .option('--token <token>', 'with <url>: the dashboard token (default: SWITCHBOARD_DASHBOARD_TOKEN)')
    .option('--json', 'JSON on stdout')
    .action(async (url: string | undefined, flags: JobsFlags) => {
      if (url !== undefined && flags.store !== undefined) throw CliError.usage('give a dashboard <url> or --store, not both');
      const storeUrl = flags.store ?? (url === undefined ? io.env.SWITCHBOARD_JOBS : undefined);
      if (url === undefined) {
        if (storeUrl === undefined) throw CliError.usage('give a dashboard <url>, or --store (or SWITCHBOARD_JOBS)');
        return count(storeUrl, flags, context);
      }
      const base = dashboardUrl(url);
      const token = flags.token ?? io.env.SWITCHBOARD_DASHBOARD_TOKEN;
      const { jobs } = await dashboardGet<{ jobs: ListedJob[] }>(base, `/api/jobs${flags.all ? '' : '?active=1'}`, token);
      const listed = jobs.filter(
        (job) =>
          (flags.operation === undefined || job.operation === flags.operation) &&
          (flags.service === undefined || job.service === flags.service),
      );
      if (flags.json) {
        io.stdout.write(`${JSON.stringify({ jobs: listed })}\n`);
        return;
      }
      const now = Date.now();
      for (const job of listed) {
        const extra = Object.entries(job)
          .filter(([name, value]) => !SHOWN.has(name) && value !== undefined && value !== null)
          .map(([name, value]) => `${name}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
        const age = `${Math.max(0, Math.round((now - job.submittedAt) / 100) / 10)}s`;
        const columns = [job.service, job.jobId, job.operation ?? '-', job.status, `${job.polls} polls`, age, ...extra];
        io.stdout.write(`${columns.join('\t')}\n`);
      }
    });
}

/** How many jobs the store holds per state. */
async function count(storeUrl: string, flags: JobsFlags, context: CommandContext): Promise<void> {
  const { io } = context;
  const store = await openJobStore(storeUrl, io.cwd);
  try {
    const counts = await store.counts(flags.operation);
    if (flags.json)
      io.stdout.write(`${JSON.stringify({ ...(flags.operation === undefined ? {} : { operation: flags.operation }), counts })}\n`);
    else for (const [status, n] of Object.entries(counts)) io.stdout.write(`${status}\t${n}\n`);
  } finally {
    await store.close();
  }
}
