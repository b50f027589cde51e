import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { openJobStore } from '../stores.js';

/** `switchboard jobs`: how many jobs are queued, running and finished, per the job store. */
export function register(program: Command, context: CommandContext): void {
  const { io } = context;
  program
    .command('jobs')
    .description('Jobs in progress and finished, counted in a job store')
    .requiredOption(
      '--store <url>',
      'the job store: sqlite:<file>, postgres://…, redis://… (env SWITCHBOARD_JOBS)',
      process.env.SWITCHBOARD_JOBS,
    )
    .option('--operation <name>', 'only this operation')
    .option('--json', 'JSON on stdout')
    .action(async (flags: { store: string; operation?: string; json?: boolean }) => {
      const store = await openJobStore(flags.store, io.cwd);
      try {
        const counts = await store.counts(flags.operation);
        if (flags.json)
          io.stdout.write(`${JSON.stringify({ ...(flags.operation === undefined ? {} : { operation: flags.operation }), counts })}\n`);
        else for (const [status, count] of Object.entries(counts)) io.stdout.write(`${status}\t${count}\n`);
      } finally {
        await store.close();
      }
    });
}
