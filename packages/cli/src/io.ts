import type { ProblemDetails } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';

/** Where a command reads and writes: the process's streams, or a test's. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

/** Exit codes, as `docs/api-documents.md` lists them. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure a command reports: a problem document on stderr, and its exit code. */
export class CliError extends Error {
  readonly problem: ProblemDetails;
  readonly exitCode: number;

  constructor(problem: ProblemDetails, exitCode: number) {
    super(problem.detail ?? problem.title);
    this.name = 'CliError';
    this.problem = problem;
    this.exitCode = exitCode;
  }

  /** Wrong arguments: exit code 2. */
  static usage(detail: string): CliError {
    return new CliError(new SwitchboardError('SB_BAD_REQUEST', { detail }).toProblem(), EXIT_USAGE);
  }

  /** Anything else that went wrong: exit code 1. */
  static failure(error: unknown): CliError {
    if (error instanceof CliError) return error;
    if (error instanceof SwitchboardError) return new CliError(error.toProblem(), EXIT_FAILURE);
    const detail = error instanceof Error ? error.message : String(error);
    return new CliError(new SwitchboardError('SB_INTERNAL', { detail }).toProblem(), EXIT_FAILURE);
  }
}

/** Writes a problem document (RFC 9457) as one line of JSON on stderr. */
export function writeProblem(io: CliIo, problem: ProblemDetails): void {
  io.stderr.write(`${JSON.stringify(problem)}\n`);
}

/**
 * Colour on stderr only when it is a terminal and nobody asked for none: `NO_COLOR` (any
 * non-empty value, https://no-color.org), `TERM=dumb` or `--no-color` turn it off;
 * `FORCE_COLOR` (other than `0`) turns it on.
 */
export function useColor(io: CliIo, flag: boolean | undefined): boolean {
  if (flag === false) return false;
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  const force = io.env.FORCE_COLOR;
  if (force !== undefined && force !== '' && force !== '0') return true;
  return io.stderr.isTTY === true && io.env.TERM !== 'dumb';
}

export function yellow(text: string, color: boolean): string {
  return color ? `\u001b[33m${text}\u001b[39m` : text;
}
