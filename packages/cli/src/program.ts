import { Command, CommanderError } from 'commander';
import type { RegisterCommand } from './command.js';
import { register as asyncapi } from './commands/asyncapi.js';
import { register as demo } from './commands/demo.js';
import { register as dlq } from './commands/dlq.js';
import { register as doctor } from './commands/doctor.js';
import { register as jobs } from './commands/jobs.js';
import { register as openapi } from './commands/openapi.js';
import { register as receipts } from './commands/receipts.js';
import { register as tail } from './commands/tail.js';
import type { CliIo } from './io.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, writeProblem } from './io.js';

/** Every command, one file each in `commands/`. A new command adds its file and one line here. */
const COMMANDS: readonly RegisterCommand[] = [openapi, asyncapi, dlq, receipts, jobs, doctor, demo, tail];

export const VERSION = '0.1.0';

/** Commander's codes that are not errors. */
const NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.version', 'commander.help']);

/**
 * Runs the `switchboard` command line and answers the exit code: 0 ok, 1 failure, 2 usage. Errors
 * are RFC 9457 problem documents, one JSON line on stderr. Nothing is ever asked interactively.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = new Command('switchboard')
    .description('Switchboard: API documents, dead letters, receipts, jobs, engine checks and live flows')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // Commander's own error lines are replaced by the problem document below.
      outputError: () => {},
    });
  const context = { io };
  for (const register of COMMANDS) register(program, context);
  const quiet = (command: Command): void => {
    command.exitOverride().configureOutput({ outputError: () => {} });
    for (const sub of command.commands) quiet(sub);
  };
  for (const command of program.commands) quiet(command);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.help' && argv.length === 0) return EXIT_USAGE; // bare `switchboard`: help on stderr
      if (NOT_ERRORS.has(error.code)) return EXIT_OK;
      const failure = CliError.usage(error.message.replace(/^error: /, ''));
      writeProblem(io, failure.problem);
      return EXIT_USAGE;
    }
    const failure = CliError.failure(error);
    writeProblem(io, failure.problem);
    return failure.exitCode === EXIT_USAGE ? EXIT_USAGE : EXIT_FAILURE;
  }
}
