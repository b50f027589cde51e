import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

/** The built `switchboard` bin (`npm test` builds first; run `npm run build` before one file alone). */
const bin = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/**
 * Runs the CLI as users run it, in a child process with `NO_COLOR` and only `PATH` from this
 * environment plus `env`. `kill` is for the caller's cleanup (a no-op once it exited).
 */
export function runBin(args: readonly string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code]) => code as number);
  return { exited, out: () => stdout, err: () => stderr, kill: () => child.exitCode === null && child.kill() };
}
