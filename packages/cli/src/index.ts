export type { CommandContext, RegisterCommand } from './command.js';
export type { CliIo } from './io.js';
export { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './io.js';
export { run, VERSION } from './program.js';
