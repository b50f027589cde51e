import { join } from 'node:path';
import { type NodeProcess, runNode } from '@switchboard/testkit';

/** The built `switchboard` bin (`npm test` builds first; run `npm run build` before one file alone). */
const bin = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/**
 * Runs the CLI as users run it, in a child process with `NO_COLOR` and only `PATH` from this
 * environment plus `env`. `kill` is for the caller's cleanup (a no-op once it exited).
 */
export function runBin(args: readonly string[], env: Record<string, string> = {}): NodeProcess {
  return runNode(bin, args, { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env } });
}
