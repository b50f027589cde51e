import type { Command } from 'commander';
import type { CliIo } from './io.js';

/** What every command file gets: one `register(program, context)` per file in `commands/`. */
export interface CommandContext {
  readonly io: CliIo;
}

export type RegisterCommand = (program: Command, context: CommandContext) => void;

/** Commander reducer for an option given several times (`--export a --export b`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The comma-separated values of a repeatable option, flattened. */
export function list(values: readonly string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}
